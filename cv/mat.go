//go:build gocv

package cv

import (
	"context"
	"errors"
	"fmt"
	"image"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
	"gocv.io/x/gocv"
)

// ErrReallocated is returned by [MatLoan.Commit] when OpenCV reallocated
// the loan's Mat (a destination of another size or type), so its pixels
// are no longer in the slot.
var ErrReallocated = errors.New("mat no longer aliases the slot (OpenCV reallocated it)")

// MatType returns the Mat type that holds frames of format f.
func MatType(f ring.PixelFormat) (gocv.MatType, error) {
	switch f {
	case ring.Gray8:
		return gocv.MatTypeCV8UC1, nil
	case ring.YUYV:
		return gocv.MatTypeCV8UC2, nil
	case ring.BGR8, ring.RGB8:
		return gocv.MatTypeCV8UC3, nil
	case ring.BGRA8, ring.RGBA8:
		return gocv.MatTypeCV8UC4, nil
	case ring.Gray16:
		return gocv.MatTypeCV16UC1, nil
	}
	return 0, fmt.Errorf("%w: pixel format %v has no Mat type", ring.ErrInvalidFrame, f)
}

// FormatOf returns the pixel format OpenCV assumes for a Mat type: 8-bit
// 1, 2, 3, 4 channels are gray8, yuyv, bgr8, bgra8; 16-bit 1 channel is
// gray16.
func FormatOf(t gocv.MatType) (ring.PixelFormat, error) {
	switch t {
	case gocv.MatTypeCV8UC1:
		return ring.Gray8, nil
	case gocv.MatTypeCV8UC2:
		return ring.YUYV, nil
	case gocv.MatTypeCV8UC3:
		return ring.BGR8, nil
	case gocv.MatTypeCV8UC4:
		return ring.BGRA8, nil
	case gocv.MatTypeCV16UC1:
		return ring.Gray16, nil
	}
	return ring.FormatInvalid, fmt.Errorf("%w: Mat type %v has no framering pixel format (8-bit 1 to 4 channels, 16-bit gray)", ring.ErrInvalidFrame, t)
}

// MatOver returns a Mat of rows x cols of type t whose pixels are b, rows
// stride bytes apart (0: packed). The Mat aliases b: nothing is copied,
// writes through the Mat change b, and b must outlive the Mat (see the
// package documentation). Close the Mat when done; that never frees b.
func MatOver(b []byte, rows, cols int, t gocv.MatType, stride int) (gocv.Mat, error) {
	f, err := FormatOf(t)
	if err != nil {
		return gocv.Mat{}, err
	}
	elem := f.Channels() * f.BytesPerSample()
	row := cols * elem
	if stride == 0 {
		stride = row
	}
	if rows <= 0 || cols <= 0 || stride < row || stride%elem != 0 {
		return gocv.Mat{}, fmt.Errorf("%w: %dx%d Mat of %v with stride %d, not a multiple of %d bytes of at least %d",
			ring.ErrInvalidFrame, cols, rows, t, stride, elem, row)
	}
	need := stride*(rows-1) + row
	if len(b) < need {
		return gocv.Mat{}, fmt.Errorf("%w: %dx%d Mat of %v needs %d bytes, the buffer has %d", ring.ErrFrameTooLarge, cols, rows, t, need, len(b))
	}
	if stride == row {
		return gocv.NewMatFromBytes(rows, cols, t, b[:rows*row])
	}
	// A wider Mat over whole strides, then the ROI of the real width:
	// OpenCV's way to express a row stride.
	if len(b) < stride*rows {
		return gocv.Mat{}, fmt.Errorf("%w: a Mat with stride %d over %d rows needs %d bytes, the buffer has %d", ring.ErrFrameTooLarge, stride, rows, stride*rows, len(b))
	}
	wide, err := gocv.NewMatFromBytes(rows, stride/elem, t, b[:stride*rows])
	if err != nil {
		return gocv.Mat{}, err
	}
	roi := wide.Region(image.Rect(0, 0, cols, rows))
	wide.Close() // the ROI keeps pointing into b; OpenCV never owned b
	return roi, nil
}

// SameData reports whether m's pixels still start at b[0]: false after
// OpenCV reallocated m (a destination of another size or type).
func SameData(m gocv.Mat, b []byte) bool {
	if m.Empty() || len(b) == 0 {
		return false
	}
	if !m.IsContinuous() {
		return false // an ROI: not a Mat made over b by Reserve
	}
	d, err := m.DataPtrUint8()
	if err != nil || len(d) == 0 {
		return false
	}
	return &d[0] == &b[0]
}

// PublishMat copies m into the next slot of w and commits it, with the
// pixel format OpenCV assumes for m's type ([FormatOf]); capture is the
// CLOCK_MONOTONIC capture time in ns (0: now, see [ring.Now]). It returns
// the frame number. m may be non-continuous (an ROI). Nothing aliases m
// after the call.
func PublishMat(w *producer.Writer, m gocv.Mat, capture int64) (uint64, error) {
	f, err := FormatOf(m.Type())
	if err != nil {
		return 0, fmt.Errorf("ring %q: publish Mat: %w", w.Name(), err)
	}
	return PublishMatAs(w, m, f, capture)
}

// PublishMatAs is [PublishMat] with an explicit pixel format (RGB8 for a
// Mat in RGB order, say); its channel count must match m's.
func PublishMatAs(w *producer.Writer, m gocv.Mat, f ring.PixelFormat, capture int64) (uint64, error) {
	if m.Empty() {
		return 0, fmt.Errorf("ring %q: publish Mat: %w: the Mat is empty (a failed read or decode?)", w.Name(), ring.ErrInvalidFrame)
	}
	l, err := Reserve(w, m.Rows(), m.Cols(), f)
	if err != nil {
		return 0, err
	}
	if t, _ := MatType(f); m.Type() != t {
		l.Abort()
		return 0, fmt.Errorf("ring %q: publish Mat: %w: Mat type %v does not hold %v (want %v)", w.Name(), ring.ErrInvalidFrame, m.Type(), f, t)
	}
	m.CopyTo(&l.Mat)
	n := l.Number()
	if err := l.Commit(capture); err != nil {
		return 0, err
	}
	return n, nil
}

// MatLoan is a reserved slot seen as a Mat. Mat aliases the slot's payload
// in shared memory: fill it in place (as the destination of
// VideoCapture.Read, CvtColor, Resize, CopyTo, ...), then Commit or Abort.
// Mat is valid only until then, and must not be closed by the caller.
type MatLoan struct {
	// Mat aliases the slot. Operations whose destination has this exact
	// size and type write into the slot; others make OpenCV reallocate it,
	// which Commit detects.
	Mat    gocv.Mat
	loan   producer.Loan
	w      *producer.Writer
	info   ring.FrameInfo
	pixels []byte
	done   bool
}

// Reserve lends w's next slot as a rows x cols Mat of format f. Only one
// loan may be out per writer.
func Reserve(w *producer.Writer, rows, cols int, f ring.PixelFormat) (*MatLoan, error) {
	t, err := MatType(f)
	if err != nil {
		return nil, fmt.Errorf("ring %q: reserve Mat: %w", w.Name(), err)
	}
	info := ring.FrameInfo{Width: cols, Height: rows, Format: f}
	l, err := w.Reserve(info)
	if err != nil {
		return nil, err
	}
	pix := l.Data()
	m, err := MatOver(pix, rows, cols, t, 0)
	if err != nil {
		l.Abort()
		return nil, fmt.Errorf("ring %q: reserve Mat: %w", w.Name(), err)
	}
	return &MatLoan{Mat: m, loan: l, w: w, info: info, pixels: pix}, nil
}

// Number is the frame number the loan will publish.
func (l *MatLoan) Number() uint64 { return l.loan.Number() }

// Loan is the underlying slot loan (write metadata through its Meta).
func (l *MatLoan) Loan() producer.Loan { return l.loan }

// Read captures the next frame of vc straight into the slot. It returns
// false when vc has no more frames (the loan stays out: Abort it). If the
// capture has another size or type than the loan, OpenCV reallocates the
// Mat and Commit fails with [ErrReallocated].
func (l *MatLoan) Read(vc *gocv.VideoCapture) bool {
	return vc.Read(&l.Mat)
}

// Decode decodes an encoded image (JPEG, PNG, ...) into the slot. gocv
// v0.31.0 has no imdecode into a given Mat, so this decodes into an OpenCV
// temporary and copies it into the slot once. The image must have the
// loan's size and type.
func (l *MatLoan) Decode(buf []byte, flags gocv.IMReadFlag) error {
	img, err := gocv.IMDecode(buf, flags)
	if err != nil {
		return fmt.Errorf("decode image: %w", err)
	}
	defer img.Close()
	if img.Empty() {
		return fmt.Errorf("decode image: %w: OpenCV could not decode the %d bytes", ring.ErrInvalidFrame, len(buf))
	}
	if img.Rows() != l.Mat.Rows() || img.Cols() != l.Mat.Cols() || img.Type() != l.Mat.Type() {
		return fmt.Errorf("decode image: %w: decoded %dx%d of type %v, the loan is %dx%d of %v",
			ring.ErrInvalidFrame, img.Cols(), img.Rows(), img.Type(), l.Mat.Cols(), l.Mat.Rows(), l.Mat.Type())
	}
	img.CopyTo(&l.Mat)
	return nil
}

// Commit publishes the slot with capture time capture (CLOCK_MONOTONIC
// ns, 0: now) and closes the Mat. If OpenCV reallocated the Mat the loan
// is aborted and the error wraps [ErrReallocated].
func (l *MatLoan) Commit(capture int64) error {
	if l.done {
		return fmt.Errorf("ring %q: commit Mat: the loan was already committed or aborted", l.w.Name())
	}
	same := SameData(l.Mat, l.pixels) && l.Mat.Rows() == l.info.Height && l.Mat.Cols() == l.info.Width
	if !same {
		got := fmt.Sprintf("%dx%d of %v", l.Mat.Cols(), l.Mat.Rows(), l.Mat.Type())
		l.Abort()
		return fmt.Errorf("ring %q: commit frame %d: %w: it is now %s, the loan was %dx%d %v",
			l.w.Name(), l.loan.Number(), ErrReallocated, got, l.info.Width, l.info.Height, l.info.Format)
	}
	l.done = true
	l.Mat.Close()
	l.loan.SetCapture(capture)
	return l.loan.Commit()
}

// Abort rolls the reservation back and closes the Mat. It does nothing
// after Commit or Abort.
func (l *MatLoan) Abort() {
	if l.done {
		return
	}
	l.done = true
	l.Mat.Close()
	l.loan.Abort()
}

// FrameMat returns a Mat over f's pixels with f's shape and stride. It
// aliases f.Data: for a frame from [consumer.Reader.Read] that is the
// caller's buffer; for a view it is shared memory (see [ViewMat]).
func FrameMat(f *ring.Frame) (gocv.Mat, error) {
	t, err := MatType(f.Format)
	if err != nil {
		return gocv.Mat{}, err
	}
	return MatOver(f.Data, f.Height, f.Width, t, f.Stride)
}

// ViewMat returns a Mat over the slot of view v, with no copy. The Mat
// aliases read-only shared memory: it is valid until v.Release, results
// computed from it are valid only if Release returns nil, and writing into
// it (using it as an OpenCV destination) crashes the process. Close the
// Mat before or after Release; that never touches the slot.
func ViewMat(v *consumer.View) (gocv.Mat, error) {
	return FrameMat(v.Frame())
}

// ReadMat waits for r's next frame and copies it into dst, which OpenCV
// reallocates if its size or type differs. The copy is validated: a frame
// the writer overwrote during the copy is dropped (counted as overwritten)
// and the next one read instead. It returns the frame, whose Data and Meta
// are not set (the pixels are in dst).
func ReadMat(ctx context.Context, r *consumer.Reader, dst *gocv.Mat) (ring.Frame, error) {
	for {
		v, err := r.Acquire(ctx)
		if err != nil {
			return ring.Frame{}, err
		}
		f := *v.Frame()
		m, merr := FrameMat(&f)
		if merr == nil {
			m.CopyTo(dst)
			m.Close()
		}
		rerr := v.Release()
		if merr != nil {
			return ring.Frame{}, fmt.Errorf("ring %q: frame %d: %w", r.Name(), f.Number, merr)
		}
		if errors.Is(rerr, ring.ErrOverwritten) {
			continue // the copy may be torn; take the next frame
		}
		if rerr != nil {
			return ring.Frame{}, rerr
		}
		f.Data, f.Meta = nil, nil
		return f, nil
	}
}
