//go:build !amd64 || purego

package memcopy

var testKernels []testKernel
