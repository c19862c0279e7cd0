// Package cluster shares one fleet of gNMI targets among meshd replicas
// through etcd (issue 18): each replica holds a lease and is a member
// while it lives; every target has one owner among the live members,
// chosen by rendezvous hashing with bounded load; the owner records its
// ownership under its lease, and the record's revision is the fencing
// token of everything it does for that target.
//
// Why etcd, and its client rather than a lock library: etcd's leases,
// transactions on revisions and watches are exactly membership,
// compare-and-set ownership and change notification; its concurrency
// package's mutexes and elections do not fit, as ownership here is many
// keys per member decided by a shared function, not one lock.
package cluster

import (
	"hash/fnv"
	"math"
	"sort"
)

// DefaultLoadFactor bounds any member's share: at most this times the
// average number of targets per member (issue 18: 1.25).
const DefaultLoadFactor = 1.25

// Capacity is the most targets one of n members may own under factor.
func Capacity(targets, members int, factor float64) int {
	if members == 0 {
		return 0
	}
	return max(1, int(math.Ceil(factor*float64(targets)/float64(members))))
}

// score is target's rendezvous weight on member: the same on every
// replica, whatever its process or build (FNV-1a, then a 64-bit mix so
// near names spread).
func score(target, member string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(target))
	h.Write([]byte{0})
	h.Write([]byte(member))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Assign gives each target one owner among members: its highest-scoring
// member that is not yet full (Capacity). Every replica computes the
// same answer from the same sets, so none needs to ask another.
// Targets are placed in an order fixed by their own hash, so that adding
// or removing one target moves few others.
func Assign(targets, members []string, factor float64) map[string]string {
	out := make(map[string]string, len(targets))
	if len(members) == 0 {
		return out
	}
	if factor < 1 {
		factor = DefaultLoadFactor
	}
	capacity := Capacity(len(targets), len(members), factor)
	order := append([]string(nil), targets...)
	key := make(map[string]uint64, len(order))
	for _, t := range order {
		key[t] = score(t, "")
	}
	sort.Slice(order, func(i, j int) bool {
		if key[order[i]] != key[order[j]] {
			return key[order[i]] < key[order[j]]
		}
		return order[i] < order[j]
	})
	load := make(map[string]int, len(members))
	ranked := make([]string, len(members))
	for _, t := range order {
		copy(ranked, members)
		sort.Slice(ranked, func(i, j int) bool {
			si, sj := score(t, ranked[i]), score(t, ranked[j])
			if si != sj {
				return si > sj
			}
			return ranked[i] < ranked[j]
		})
		for _, m := range ranked {
			if load[m] < capacity {
				out[t] = m
				load[m]++
				break
			}
		}
	}
	return out
}
