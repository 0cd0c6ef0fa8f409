package pattern

import "testing"

func TestFillCheck(t *testing.T) {
	for _, n := range []int{16, 17, 100, 640 * 404 * 3} {
		b := make([]byte, n)
		Fill(b, 42)
		if err := Check(b, 42); err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if err := Check(b, 43); err == nil {
			t.Fatalf("%d bytes: frame 42 passed as 43", n)
		}
	}
}

func TestCheckCatchesTear(t *testing.T) {
	a, b := make([]byte, 4096), make([]byte, 4096)
	Fill(a, 7)
	Fill(b, 15)
	copy(a[2048:], b[2048:]) // second half from another frame
	if err := Check(a, 7); err == nil {
		t.Fatal("torn frame passed Check")
	}
	if _, err := Verify(a); err == nil {
		t.Fatal("torn frame passed Verify")
	}
	Fill(a, 7)
	a[4000] ^= 1
	if _, err := Verify(a); err == nil {
		t.Fatal("flipped bit passed Verify")
	}
}
