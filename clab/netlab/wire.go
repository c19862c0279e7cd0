package netlab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/meshd/meshd/internal/wire"
)

// Impairments are the delay and loss set on links, by link index and the
// name of the router whose outgoing frames they affect.
type Impairments map[int]map[string]wire.Impairment

const impairFile = "impairments.json"

func (l *Lab) loadImpairments() (Impairments, error) {
	imp := Impairments{}
	b, err := os.ReadFile(filepath.Join(l.State.Dir, impairFile))
	if errors.Is(err, os.ErrNotExist) {
		return imp, nil
	}
	if err != nil {
		return nil, err
	}
	return imp, json.Unmarshal(b, &imp)
}

// setImpairment records an impairment of frames from router `from` on a
// link and tells the wire daemon to apply it.
func (l *Lab) setImpairment(lk Link, from string, imp wire.Impairment) error {
	all, err := l.loadImpairments()
	if err != nil {
		return err
	}
	if all[lk.Index] == nil {
		all[lk.Index] = map[string]wire.Impairment{}
	}
	all[lk.Index][from] = imp
	b, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(l.State.Dir, impairFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(l.State.Dir, impairFile)); err != nil {
		return err
	}
	pid, ok := l.running("wire")
	if !ok {
		return errors.New("the lab's wire daemon is not running")
	}
	return syscall.Kill(pid, syscall.SIGHUP)
}

// startWire starts `meshd-lab wire` detached.
func (l *Lab) startWire() error {
	bin, err := l.opts.binary("meshd-lab", l.opts.Lab)
	if err != nil {
		return err
	}
	l.opts.progress("starting the link daemon in %s (delay and loss faults)", WireNS)
	// It runs in the root namespace and opens its sockets in WireNS.
	if err := l.startHere("wire", bin, "wire", "--dir", l.State.Dir); err != nil {
		return err
	}
	// Until it bridges, no link carries a frame: a lab whose wire died
	// at start looks like routers that cannot reach each other.
	return l.waitLog("wire", wireReady, 30*time.Second)
}

// wireReady is what the wire daemon prints once every link is bridged.
const wireReady = "lab wire: bridging"

// RunWire bridges every link of the lab in user space until ctx ends,
// re-reading the impairments file on SIGHUP.
func RunWire(ctx context.Context, dir string) error {
	l, err := Load(dir)
	if err != nil {
		return err
	}
	links := map[int]*wire.Link{}
	for _, lk := range l.Topo.Links {
		wa, wb := lk.WireIfs()
		wl, err := wire.Open(WireNS, wa, wb)
		if err != nil {
			return err
		}
		links[lk.Index] = wl
		go wl.Run(ctx)
	}
	apply := func() {
		imps, err := l.loadImpairments()
		if err != nil {
			slog.Error("lab wire: impairments", slog.Any("err", err))
			return
		}
		for _, lk := range l.Topo.Links {
			wa, wb := lk.WireIfs()
			a, b := l.Topo.Routers[lk.A-1].Name, l.Topo.Routers[lk.B-1].Name
			for from, ifn := range map[string]string{a: wa, b: wb} {
				imp := imps[lk.Index][from]
				if err := links[lk.Index].Set(ifn, imp); err != nil {
					slog.Error("lab wire", slog.Any("err", err))
				}
			}
		}
		slog.Info("lab wire: impairments applied", slog.Any("impairments", imps))
	}
	apply()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	fmt.Fprintf(os.Stderr, "%s %d links\n", wireReady, len(links))
	for {
		select {
		case <-ctx.Done():
			time.Sleep(100 * time.Millisecond)
			return nil
		case <-hup:
			apply()
		}
	}
}
