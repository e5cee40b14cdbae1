// Package scale holds the scale checks of the performance work, behind the build tag "scale"
// (`make scale`): how much memory the sentinel spends per attached idle node, and how the
// binding table behaves with a million sessions. They print figures; they assert only the
// budgets the project set (≤ 40 KiB per idle node, 1M bindings in < 1 GiB).
package scale
