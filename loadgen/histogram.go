package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// Histogram layout: values below 2*subCount are counted exactly; above that each power of two
// is split into subCount equal buckets, so a bucket is never wider than 1/subCount of its lower
// bound. Reporting the bucket midpoint bounds the relative error by 1/(2*subCount) = 0.39%.
const (
	subBits  = 7
	subCount = 1 << subBits
	// maxTrackable is the largest latency kept with full precision (about 73 minutes); larger
	// values are counted in the last bucket but still raise Max exactly.
	maxTrackable = 1<<42 - 1
	numBuckets   = (42-subBits-1)*subCount + 2*subCount
)

// Histogram records durations with bounded relative error in fixed memory (about 36 KiB).
// It is not safe for concurrent use: give each goroutine its own and Merge them.
type Histogram struct {
	counts [numBuckets]uint64
	total  uint64
	sum    float64 // nanoseconds; float so hours of nanoseconds cannot overflow
	min    int64
	max    int64
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram { return &Histogram{min: math.MaxInt64} }

func bucketOf(v int64) int {
	if v < 0 {
		v = 0
	}
	if v > maxTrackable {
		v = maxTrackable
	}
	shift := bits.Len64(uint64(v)) - (subBits + 1)
	if shift < 0 {
		shift = 0
	}
	return shift*subCount + int(v>>uint(shift))
}

// bucketRange returns the smallest value of bucket i and its width.
func bucketRange(i int) (lower, width int64) {
	if i < 2*subCount {
		return int64(i), 1
	}
	shift := i/subCount - 1
	top := int64(i - shift*subCount)
	return top << uint(shift), 1 << uint(shift)
}

// Record adds one duration; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)]++
	h.total++
	h.sum += float64(v)
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

// Merge adds every value recorded in o.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.total }

// Min and Max are exact; both are 0 for an empty histogram.
func (h *Histogram) Min() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.min)
}

func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean is the exact arithmetic mean (0 when empty).
func (h *Histogram) Mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.total))
}

// Percentile returns the nearest-rank percentile p (0 < p <= 100): the value below or at which
// p percent of the recorded values lie, as the midpoint of its bucket clamped to [Min, Max].
// p outside (0, 100] is clamped; an empty histogram returns 0.
func (h *Histogram) Percentile(p float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	if !(p > 0) { // also catches NaN
		return h.Min()
	}
	if p >= 100 {
		return h.Max()
	}
	rank := uint64(math.Ceil(p / 100 * float64(h.total)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lower, width := bucketRange(i)
			v := lower + (width-1)/2
			return time.Duration(min(max(v, h.min), h.max))
		}
	}
	return h.Max()
}
