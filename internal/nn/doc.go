// Package nn is the bridge between smallsd's models and its kernels: project-owned gorgonia Ops
// that call internal/kernels, layers that add nodes to a gorgonia graph from a weights view (named
// and shaped as diffusers names them), and an executor that runs a compiled graph reusing memory.
package nn
