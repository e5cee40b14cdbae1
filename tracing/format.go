package tracing

import "strconv"

func formatRatio(r float64) string { return strconv.FormatFloat(r, 'g', 4, 64) }
