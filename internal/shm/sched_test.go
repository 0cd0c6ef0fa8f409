package shm

import (
	"runtime"
	"slices"
	"testing"
)

func TestPinProcess(t *testing.T) {
	orig, err := CPUs()
	if err != nil {
		t.Fatal(err)
	}
	if len(orig) == 0 {
		t.Fatal("CPUs() is empty")
	}
	defer PinProcess(orig...)
	// A thread that exists before the pin, and one created after it.
	before := make(chan []int)
	release := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		<-release
		c, _ := CPUs()
		before <- c
	}()
	want := []int{orig[len(orig)-1]}
	if err := PinProcess(want...); err != nil {
		t.Fatal(err)
	}
	close(release)
	if got := <-before; !slices.Equal(got, want) {
		t.Errorf("a thread that existed before the pin may run on %v, want %v", got, want)
	}
	after := make(chan []int)
	go func() {
		runtime.LockOSThread() // a new thread if the pool has none free
		defer runtime.UnlockOSThread()
		c, _ := CPUs()
		after <- c
	}()
	if got := <-after; !slices.Equal(got, want) {
		t.Errorf("another thread may run on %v, want %v", got, want)
	}
	if err := PinProcess(); err == nil {
		t.Error("PinProcess() with no CPU: no error")
	}
	if err := PinProcess(-1); err == nil {
		t.Error("PinProcess(-1): no error")
	}
}

func TestUint32AtUint64At(t *testing.T) {
	b := make([]byte, 64)
	if _, err := Uint32At(b, 62); err == nil {
		t.Error("32-bit word past the end accepted")
	}
	if _, err := Uint32At(b, 2); err == nil {
		t.Error("unaligned 32-bit word accepted")
	}
	if _, err := Uint64At(b, 60); err == nil {
		t.Error("64-bit word past the end accepted")
	}
	if _, err := Uint64At(b, 4); err == nil {
		t.Error("unaligned 64-bit word accepted")
	}
	u32, err := Uint32At(b, 4)
	if err != nil {
		t.Fatal(err)
	}
	u64, err := Uint64At(b, 8)
	if err != nil {
		t.Fatal(err)
	}
	u32.Store(0x01020304)
	u64.Store(0x0102030405060708)
	if b[4] != 4 || b[7] != 1 || b[8] != 8 || b[15] != 1 {
		t.Errorf("words not little-endian at 4 and 8: % x", b[4:16])
	}
}
