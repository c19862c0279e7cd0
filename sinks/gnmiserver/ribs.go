package gnmiserver

import (
	gpb "github.com/openconfig/gnmi/proto/gnmi"

	"github.com/meshd/meshd/gnmitarget"
	"github.com/meshd/meshd/ribview"
)

// ribSubtree serves the RIB paths from the hub: the target's Subtree.
type ribSubtree struct{ *ribview.Hub }

func (r ribSubtree) Watch(want func(string) bool, patterns [][]*gpb.PathElem) gnmitarget.SubtreeWatch {
	return r.Hub.Watch(want, patterns)
}
