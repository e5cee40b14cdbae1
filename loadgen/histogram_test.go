package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// maxRelErr is the documented bound: half a bucket over the bucket's lower bound.
const maxRelErr = 1.0 / (2 * subCount)

func exactPercentile(sorted []int64, p float64) int64 {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = max(rank, 1)
	return sorted[rank-1]
}

func TestHistogramPercentileAccuracy(t *testing.T) {
	gens := []struct {
		name string
		gen  func(r *rand.Rand) int64
	}{
		{"uniform 0-1000ns", func(r *rand.Rand) int64 { return r.Int64N(1000) }},
		{"uniform 50us-5ms", func(r *rand.Rand) int64 { return 50_000 + r.Int64N(5_000_000) }},
		{"lognormal around 120us", func(r *rand.Rand) int64 { return int64(120_000 * math.Exp(r.NormFloat64()*0.8)) }},
		{"bimodal 80us / 30ms", func(r *rand.Rand) int64 {
			if r.IntN(100) < 3 {
				return 30_000_000 + r.Int64N(1_000_000)
			}
			return 80_000 + r.Int64N(20_000)
		}},
		{"exponential tail", func(r *rand.Rand) int64 { return int64(r.ExpFloat64() * 2e6) }},
		{"seconds", func(r *rand.Rand) int64 { return int64(time.Second) + r.Int64N(int64(30*time.Second)) }},
	}
	for _, g := range gens {
		t.Run(g.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			h := NewHistogram()
			vals := make([]int64, 100_000)
			for i := range vals {
				vals[i] = g.gen(r)
				h.Record(time.Duration(vals[i]))
			}
			slices.Sort(vals)
			for _, p := range []float64{0.1, 1, 10, 50, 90, 99, 99.9, 99.99} {
				want := exactPercentile(vals, p)
				got := int64(h.Percentile(p))
				if diff := math.Abs(float64(got - want)); diff > maxRelErr*float64(want) {
					t.Errorf("p%g = %d, exact %d: relative error %.4f > %.4f", p, got, want, diff/float64(want), maxRelErr)
				}
			}
			if h.Min() != time.Duration(vals[0]) || h.Max() != time.Duration(vals[len(vals)-1]) {
				t.Errorf("min/max = %d/%d, want %d/%d", h.Min(), h.Max(), vals[0], vals[len(vals)-1])
			}
			if h.Percentile(100) != h.Max() {
				t.Errorf("p100 %v != max %v", h.Percentile(100), h.Max())
			}
			var sum float64
			for _, v := range vals {
				sum += float64(v)
			}
			if want := sum / float64(len(vals)); math.Abs(float64(h.Mean())-want) > 1 {
				t.Errorf("mean %v, want %v", h.Mean(), want)
			}
		})
	}
}

func TestHistogramSmallValuesExact(t *testing.T) {
	h := NewHistogram()
	for v := 0; v < 2*subCount; v++ {
		h.Record(time.Duration(v))
	}
	for v := 1; v <= 2*subCount; v++ {
		p := float64(v) / float64(2*subCount) * 100
		if got := h.Percentile(p); got != time.Duration(v-1) {
			t.Fatalf("p%g = %d, want %d", p, got, v-1)
		}
	}
}

func TestHistogramBucketsContiguous(t *testing.T) {
	// Every bucket starts where the previous one ended, and bucketOf maps both ends back.
	var next int64
	for i := 0; i < numBuckets; i++ {
		lower, width := bucketRange(i)
		if lower != next {
			t.Fatalf("bucket %d starts at %d, want %d", i, lower, next)
		}
		if bucketOf(lower) != i || bucketOf(lower+width-1) != i {
			t.Fatalf("bucket %d [%d,%d] maps to %d/%d", i, lower, lower+width-1, bucketOf(lower), bucketOf(lower+width-1))
		}
		if i >= 2*subCount && float64(width)/float64(lower) > 1.0/subCount {
			t.Fatalf("bucket %d too wide: %d at %d", i, width, lower)
		}
		next = lower + width
	}
	if next != maxTrackable+1 {
		t.Fatalf("buckets end at %d, want %d", next, int64(maxTrackable)+1)
	}
}

func TestHistogramEdgeCases(t *testing.T) {
	tests := []struct {
		name   string
		record []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"negative counts as zero", []time.Duration{-5}, 50, 0},
		{"beyond trackable keeps exact max", []time.Duration{time.Duration(maxTrackable) * 4}, 100, time.Duration(maxTrackable) * 4},
		{"beyond trackable percentile clamps to max", []time.Duration{time.Duration(maxTrackable) * 4}, 50, time.Duration(maxTrackable) * 4},
		{"p0 is min", []time.Duration{7, 9000}, 0, 7},
		{"NaN is min", []time.Duration{7, 9000}, math.NaN(), 7},
		{"above 100 is max", []time.Duration{7, 9000}, 250, 9000},
		{"single value exact despite bucket", []time.Duration{123_457}, 50, 123_457},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHistogram()
			for _, d := range tc.record {
				h.Record(d)
			}
			if got := h.Percentile(tc.p); got != tc.want {
				t.Errorf("Percentile(%g) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

func TestHistogramMerge(t *testing.T) {
	a, b, all := NewHistogram(), NewHistogram(), NewHistogram()
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 10_000; i++ {
		d := time.Duration(r.Int64N(10_000_000))
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
		all.Record(d)
	}
	a.Merge(b)
	a.Merge(NewHistogram()) // merging an empty one must not disturb min
	a.Merge(nil)
	if a.Count() != all.Count() || a.Min() != all.Min() || a.Max() != all.Max() || a.Mean() != all.Mean() {
		t.Fatalf("merged count/min/max/mean %d/%v/%v/%v, want %d/%v/%v/%v",
			a.Count(), a.Min(), a.Max(), a.Mean(), all.Count(), all.Min(), all.Max(), all.Mean())
	}
	for _, p := range []float64{1, 50, 99, 99.9} {
		if a.Percentile(p) != all.Percentile(p) {
			t.Errorf("p%g merged %v, single %v", p, a.Percentile(p), all.Percentile(p))
		}
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	h := NewHistogram()
	b.ReportAllocs()
	var d time.Duration = 1
	for b.Loop() {
		h.Record(d)
		d = (d*7 + 13) % (100 * time.Millisecond)
	}
}

func BenchmarkHistogramPercentile(b *testing.B) {
	h := NewHistogram()
	for i := 0; i < 100_000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = h.Percentile(99.9)
	}
}
