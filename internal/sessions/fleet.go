package sessions

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/meshd/meshd/stage"
)

// UnreachableHeader names, in a fleet-wide answer, the members whose
// sessions are missing from it because they did not answer in time.
const UnreachableHeader = "Meshd-Unreachable"

// PeerTimeout bounds the wait for one member: a paused or cut replica
// must not hold the table of the rest for longer than a refresh.
const PeerTimeout = 3 * time.Second

// FleetHandler serves the sessions of the whole fleet from any replica of
// a cluster: this replica's own rows and, read with ?scope=local, those of
// every other live member (peers returns their HTTP addresses). A request
// with ?scope=local gets this replica's rows only. A member that does not
// answer is named in the Meshd-Unreachable header and its routers are
// missing: the operator still sees the rest of the fleet, and is told
// which part is not shown. With peers nil it is Handler. client asks the
// members, with scheme (http or https); nil is a plain client.
func FleetHandler(s stage.Snapshotter, peers func() []string, client *http.Client, scheme string, log *slog.Logger) http.Handler {
	local := Handler(s)
	if peers == nil {
		return local
	}
	if client == nil {
		client, scheme = &http.Client{}, "http"
	}
	if client.Timeout == 0 || client.Timeout > PeerTimeout {
		c := *client
		c.Timeout = PeerTimeout
		client = &c
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		addrs := peers()
		if q.Get("scope") == "local" || len(addrs) == 0 {
			local.ServeHTTP(w, r)
			return
		}
		router := q.Get("router")
		sets := [][]Row{Build(s.Snapshot(router))}
		var (
			mu      sync.Mutex
			missing []string
			wg      sync.WaitGroup
		)
		for _, addr := range addrs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rows, err := peerRows(r.Context(), client, scheme, addr, router)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					missing = append(missing, addr)
					log.Debug("sessions: member did not answer", slog.String("member", addr), slog.Any("err", err))
					return
				}
				sets = append(sets, rows)
			}()
		}
		wg.Wait()
		if len(missing) > 0 {
			sort.Strings(missing)
			w.Header().Set(UnreachableHeader, strings.Join(missing, ","))
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(MergeRows(sets...))
	})
}

func peerRows(ctx context.Context, c *http.Client, scheme, addr, router string) ([]Row, error) {
	q := url.Values{"scope": {"local"}}
	if router != "" {
		q.Set("router", router)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+addr+"/api/sessions?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", addr, resp.Status)
	}
	var rows []Row
	if err := json.NewDecoder(resp.Body).Decode(&rows); err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	return rows, nil
}

// MergeRows joins the rows of several members, sorted. Ownership gives
// each router one member, but for a moment around a re-home (or while a
// router's BMP is served where it landed because its owner refused the
// relay) two may hold a session: the row joined from more sources wins,
// and on a tie the earlier set's (this replica's own comes first).
func MergeRows(sets ...[]Row) []Row {
	type key struct{ r, ni, a string }
	best := map[key]Row{}
	var order []key
	for _, rows := range sets {
		for _, row := range rows {
			k := key{row.Router, row.NetworkInstance, row.Neighbor}
			old, ok := best[k]
			if !ok {
				order = append(order, k)
				best[k] = row
				continue
			}
			if SourceCount(row.Sources) > SourceCount(old.Sources) {
				best[k] = row
			}
		}
	}
	out := make([]Row, 0, len(order))
	for _, k := range order {
		out = append(out, best[k])
	}
	sortRows(out)
	return out
}

// SourceCount is how many sources a row's Sources names: where two
// replicas hold one session, the row joined from more of them is the
// one to show.
func SourceCount(s string) int {
	if s == "" {
		return 0
	}
	return strings.Count(s, ",") + 1
}
