// Package clab holds meshd's labs: a containerlab topology (meshd.clab.yml)
// for users with Docker and router images, and, in netlab, a lab on Linux
// network namespaces that runs anywhere meshd's tests run.
package clab
