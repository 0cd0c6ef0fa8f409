package legacy

// SetAfterCopy installs a hook that runs between a copy and its re-check
// (a test makes every copy torn by changing the header there).
func (r *Reader) SetAfterCopy(fn func()) { r.afterCopy = fn }

// TornBound is how many torn copies in a row Read makes before a poll.
const TornBound = tornBound
