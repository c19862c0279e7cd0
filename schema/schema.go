// Package schema holds the OpenConfig and meshd YANG schemas meshd
// validates against, unpacked once per process: the merge core, the gNMI
// translation and the gNMI server read the same trees.
package schema

import (
	"fmt"
	"sync"

	"github.com/openconfig/ondatra/gnmi/oc"
	"github.com/openconfig/ygot/ytypes"

	mygot "github.com/meshd/meshd/ygot"
)

var schemas struct {
	once    sync.Once
	oc, msh *ytypes.Schema
	err     error
}

// Schemas returns the OpenConfig and meshd schemas. They are unpacked once
// per process and are read-only after. The OpenConfig one is the tree the
// oc package unpacked when it was initialised (its init panics if that
// fails): oc.Schema would unpack a second copy of the whole OpenConfig
// schema, 12 MiB that live as long as meshd does.
func Schemas() (ocSchema, meshdSchema *ytypes.Schema, err error) {
	schemas.once.Do(func() {
		schemas.oc = &ytypes.Schema{Root: &oc.Root{}, SchemaTree: oc.SchemaTree, Unmarshal: oc.Unmarshal}
		if schemas.msh, schemas.err = mygot.Schema(); schemas.err != nil {
			schemas.err = fmt.Errorf("meshd schema: %w", schemas.err)
		}
	})
	return schemas.oc, schemas.msh, schemas.err
}
