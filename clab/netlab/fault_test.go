package netlab

import (
	"strings"
	"testing"
	"time"
)

func TestParseFault(t *testing.T) {
	tests := []struct {
		args    string
		want    string // Fault.String(), when it parses
		wantErr string // a part of the error, when it does not
	}{
		{args: "down r3 r4", want: "down r3–r4"},
		{args: "up r3 r4", want: "up r3–r4"},
		{args: "reset r1 r2", want: "reset r1–r2"},
		{args: "delay r1 r2 20ms", want: "delay r1→r2 20ms"},
		{args: "delay r1 r2 0", want: "delay r1→r2 0s"},
		{args: "delay r1 r2 10s", want: "delay r1→r2 10s"},
		{args: "loss r2 r1 5%", want: "loss r2→r1 5%"},
		{args: "loss r2 r1 0.5", want: "loss r2→r1 0.5%"},
		{args: "clear r2 r1", want: "clear r2→r1"},
		{args: "reroute r1 r3 r2", want: "reroute r1–r3 via r2"},
		{args: "unroute r1 r3 r2", want: "unroute r1–r3 via r2"},
		{args: "hijack r3 10.200.1.0/25", want: "hijack r3 10.200.1.0/25"},
		{args: "hijack r3 2001:db8:1::/64", want: "hijack r3 2001:db8:1::/64"},
		{args: "invalid r2", want: "invalid r2"},
		{args: "withdraw r3 10.200.1.0/25", want: "withdraw r3 10.200.1.0/25"},

		{args: "", wantErr: "name a fault: one of down, up, reset, delay, loss, clear, reroute, unroute, hijack, invalid, withdraw, kill-replica, start-replica, pause-replica, resume-replica, partition-replica, heal-replica"},
		{args: "flap r1 r2", wantErr: `unknown fault "flap": want one of down, up, reset, delay, loss, clear, reroute, unroute, hijack, invalid, withdraw, kill-replica, start-replica, pause-replica, resume-replica, partition-replica, heal-replica`},
		{args: "delay r1 r2 -5ms", wantErr: "delay -5ms: a delay cannot be negative"},
		{args: "delay r1 r2 11s", wantErr: "delay 11s: at most 10s"},
		{args: "delay r1 r2 fast", wantErr: `delay "fast": want a duration such as 20ms`},
		{args: "delay r1 r2", wantErr: "fault delay: got 2 operands, want 3 (delay R1 R2 DELAY)"},
		{args: "loss r1 r2 -5%", wantErr: "loss -5%: a loss cannot be negative"},
		{args: "loss r1 r2 101%", wantErr: "loss 101%: at most 100%"},
		{args: "loss r1 r2 NaN", wantErr: `loss "NaN": want a percentage`},
		{args: "down r1 r2 now", wantErr: "fault down: got 3 operands, want 2 (down R1 R2)"},
		{args: "down r1 r1", wantErr: "down r1 r1: name two different routers"},
		{args: "reroute r1 r3", wantErr: "fault reroute: got 2 operands, want 3 (reroute R1 R2 VIA)"},
		{args: "reroute r1 r3 r3", wantErr: "go through a third router"},
		{args: "hijack r3 10.200.1.0", wantErr: `hijack r3 "10.200.1.0": want a prefix`},
		{args: "withdraw r3 r4", wantErr: `withdraw r3 "r4": want a prefix`},
		{args: "invalid r3 10.200.3.0/25", wantErr: "fault invalid: got 2 operands, want 1 (invalid R)"},

		{args: "kill-replica 2", want: "kill-replica 2"},
		{args: "start-replica 2", want: "start-replica 2"},
		{args: "pause-replica 1 30s", want: "pause-replica 1 30s"},
		{args: "pause-replica 1 0", want: "pause-replica 1 0s"},
		{args: "resume-replica 1", want: "resume-replica 1"},
		{args: "partition-replica 3", want: "partition-replica 3"},
		{args: "heal-replica 3", want: "heal-replica 3"},
		{args: "kill-replica 0", wantErr: `kill-replica "0": want a replica number, 1 to 9`},
		{args: "kill-replica r1", wantErr: `kill-replica "r1": want a replica number`},
		{args: "kill-replica", wantErr: "fault kill-replica: got 0 operands, want 1 (kill-replica N)"},
		{args: "pause-replica 1", wantErr: "fault pause-replica: got 1 operands, want 2 (pause-replica N DURATION)"},
		{args: "pause-replica 1 soon", wantErr: `pause-replica 1 "soon": want a duration such as 30s`},
		{args: "pause-replica 1 11m", wantErr: "pause-replica 1 11m: want 0 to 10m0s"},
		{args: "pause-replica 1 -1s", wantErr: "pause-replica 1 -1s: want 0 to 10m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			f, err := ParseFault(strings.Fields(tt.args))
			switch {
			case tt.wantErr != "" && err == nil:
				t.Fatalf("parsed as %s, want error %q", f, tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("error %q, want %q", err, tt.wantErr)
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.wantErr == "" && f.String() != tt.want:
				t.Fatalf("parsed as %q, want %q", f, tt.want)
			}
		})
	}
	if f, _ := ParseFault([]string{"delay", "r1", "r2", "20ms"}); f.Delay != 20*time.Millisecond {
		t.Errorf("delay %v", f.Delay)
	}
	if f, _ := ParseFault([]string{"loss", "r1", "r2", "5%"}); f.Loss != 0.05 {
		t.Errorf("loss %v", f.Loss)
	}
}

// Every kind the parser takes is in the one table, and every kind in the
// table parses: the error's list cannot fall behind again.
func TestFaultKindsComplete(t *testing.T) {
	if got := len(FaultKinds); got != 17 {
		t.Errorf("%d fault kinds, want 17", got)
	}
	for _, k := range FaultKinds {
		args := []string{k.Name}
		for _, a := range k.Args {
			v := map[string]string{"R": "r3", "R1": "r1", "R2": "r2", "VIA": "r3", "DELAY": "1ms", "PERCENT": "1%", "PREFIX": "10.0.0.0/8",
				"N": "2", "DURATION": "30s"}[a]
			if v == "" {
				t.Fatalf("%s: operand %s has no example", k.Name, a)
			}
			args = append(args, v)
		}
		if _, err := ParseFault(args); err != nil {
			t.Errorf("%v: %v", args, err)
		}
		if !strings.Contains(FaultNames(), k.Name) {
			t.Errorf("FaultNames() %q lacks %s", FaultNames(), k.Name)
		}
	}
}

func TestCheckFault(t *testing.T) {
	tests := []struct {
		routers int
		args    string
		wantErr string
	}{
		{4, "delay r1 r2 10ms", ""},
		{4, "down r3 r4", ""},
		{4, "down r4 r1", ""},
		{4, "hijack r3 10.200.1.0/25", ""},
		{5, "reroute r1 r3 r2", ""},
		{4, "delay r1 r99 10ms", "no router r99 (this lab has r1 to r4)"},
		{4, "delay r99 r1 10ms", "no router r99"},
		{4, "hijack r9 10.200.1.0/25", "no router r9"},
		{4, "invalid r2", ""},
		{4, "invalid r9", "no router r9"},
		{4, "withdraw r9 10.200.1.0/25", "no router r9"},
		{5, "reroute r1 r3 r9", "no router r9"},
		{4, "delay r1 r3 10ms", "no direct link between r1 and r3 (r1 is linked to r2, r4)"},
		{4, "reroute r1 r3 r2", "no direct link between r1 and r3"},
		{4, "reroute r1 r2 r3", "no router is linked to both r1 and r2"},
		{5, "reroute r1 r3 r4", "r4 is not linked to both r1 and r3; r2 is"},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			topo, err := NewTopology(tt.routers)
			if err != nil {
				t.Fatal(err)
			}
			f, err := ParseFault(strings.Fields(tt.args))
			if err != nil {
				t.Fatal(err)
			}
			err = topo.Check(f)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("%d routers: %v", tt.routers, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("%d routers: error %v, want %q", tt.routers, err, tt.wantErr)
			}
		})
	}
}

// The examples the banner prints are faults the lab takes, on every size.
func TestFaultExamples(t *testing.T) {
	for _, n := range []int{2, 3, 4, 5, 20, 60} {
		topo, err := NewTopology(n)
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]bool{}
		for _, ex := range topo.FaultExamples() {
			f, err := ParseFault(strings.Fields(ex))
			if err != nil {
				t.Errorf("%d routers: %q: %v", n, ex, err)
				continue
			}
			if err := topo.Check(f); err != nil {
				t.Errorf("%d routers: %q: %v", n, ex, err)
			}
			kinds[f.Kind] = true
		}
		_, _, _, tri := topo.RerouteExample()
		if kinds["reroute"] != tri || tri != (n == 3 || n >= 5) {
			t.Errorf("%d routers: reroute example %v, triangle %v", n, kinds["reroute"], tri)
		}
	}
}

func TestCheckReplica(t *testing.T) {
	tests := []struct {
		replicas int
		args     string
		wantErr  string
	}{
		{3, "kill-replica 3", ""},
		{3, "pause-replica 1 30s", ""},
		{3, "kill-replica 4", "no replica 4 (this lab has 1 to 3)"},
		{0, "partition-replica 1", "this lab has no replicas (meshd-lab up --replicas 3)"},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			f, err := ParseFault(strings.Fields(tt.args))
			if err != nil {
				t.Fatal(err)
			}
			err = CheckReplica(f, tt.replicas)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("%d replicas: %v", tt.replicas, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("%d replicas: error %v, want %q", tt.replicas, err, tt.wantErr)
			}
		})
	}
}
