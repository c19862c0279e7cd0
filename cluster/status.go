package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// MemberStatus is one live member as etcd holds it.
type MemberStatus struct {
	Name string `json:"name"`
	// Lease is the member's lease ID (hex) and TTL what is left of it.
	Lease string        `json:"lease"`
	TTL   time.Duration `json:"ttl"`
	Owns  int           `json:"owns"`
	// Advertise is where the replica says it is reached.
	Advertise Advertise `json:"advertise"`
}

// Ownership is one target's record: its owner and the record's create
// revision, the fencing token of the owner's work for it.
type Ownership struct {
	Target string `json:"target"`
	Owner  string `json:"owner"`
	Token  int64  `json:"token"`
}

// Status is the cluster as etcd holds it: what `meshd cluster status`
// shows.
type Status struct {
	Members []MemberStatus `json:"members"`
	Owners  []Ownership    `json:"owners"`
	// Orphans are records whose owner is no member: a lease on its way
	// out.
	Orphans int `json:"orphans"`
}

// ReadStatus reads the cluster's members, leases and ownership from etcd.
func ReadStatus(ctx context.Context, cfg Config) (*Status, error) {
	cfg.SetDefaults()
	cli, err := clientv3.New(clientv3.Config{Endpoints: cfg.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("etcd %v: %w", cfg.Endpoints, err)
	}
	defer cli.Close()
	ms, err := cli.Get(ctx, cfg.membersKey(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("etcd %v: %w", cfg.Endpoints, err)
	}
	st := &Status{}
	index := map[string]int{}
	for _, kv := range ms.Kvs {
		m := MemberStatus{Name: strings.TrimPrefix(string(kv.Key), cfg.membersKey()), Lease: fmt.Sprintf("%x", kv.Lease)}
		var rec memberRecord
		if json.Unmarshal(kv.Value, &rec) == nil {
			m.Advertise = rec.Advertise
		}
		if r, err := cli.TimeToLive(ctx, clientv3.LeaseID(kv.Lease)); err == nil {
			m.TTL = time.Duration(r.TTL) * time.Second
		}
		index[m.Name] = len(st.Members)
		st.Members = append(st.Members, m)
	}
	recs, err := cli.Get(ctx, cfg.ownersKey(), clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	for _, kv := range recs.Kvs {
		o := Ownership{Target: strings.TrimPrefix(string(kv.Key), cfg.ownersKey()), Owner: string(kv.Value), Token: kv.CreateRevision}
		if i, ok := index[o.Owner]; ok {
			st.Members[i].Owns++
		} else {
			st.Orphans++
		}
		st.Owners = append(st.Owners, o)
	}
	sort.Slice(st.Members, func(i, j int) bool { return st.Members[i].Name < st.Members[j].Name })
	sort.Slice(st.Owners, func(i, j int) bool { return st.Owners[i].Target < st.Owners[j].Target })
	return st, nil
}

// Write prints the members and, with targets, every ownership record.
func (st *Status) Write(w io.Writer, targets bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tLEASE\tTTL LEFT\tTARGETS\tBMP\tGNMI\tHTTP")
	for _, m := range st.Members {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%s\t%s\t%s\n", m.Name, m.Lease, m.TTL, m.Owns,
			dash(m.Advertise.BMP), dash(m.Advertise.GNMI), dash(m.Advertise.HTTP))
	}
	fmt.Fprintf(tw, "%d members, %d targets owned", len(st.Members), len(st.Owners))
	if st.Orphans > 0 {
		fmt.Fprintf(tw, " (%d by a member whose lease is ending)", st.Orphans)
	}
	fmt.Fprintln(tw)
	if targets {
		fmt.Fprintln(tw, "\nTARGET\tOWNER\tTOKEN")
		for _, o := range st.Owners {
			fmt.Fprintf(tw, "%s\t%s\t%d\n", o.Target, o.Owner, o.Token)
		}
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
