package balancer

import "math/rand/v2"

// Random is the power-of-two-choices strategy: it draws two distinct members
// at random and keeps the one with the lower Load. It gets most of the
// benefit of least-connections without scanning the pool or herding every new
// session onto the same momentarily-idle member.
type Random struct{}

// Pick implements Strategy. The top-level math/rand/v2 functions are safe for
// concurrent use and do not lock.
func (Random) Pick(_ string, members []Member) (string, bool) {
	n := len(members)
	switch n {
	case 0:
		return "", false
	case 1:
		return members[0].ID, true
	}
	i := rand.IntN(n)
	j := rand.IntN(n - 1)
	if j >= i {
		j++
	}
	if load(members[j]) < load(members[i]) {
		i = j
	}
	return members[i].ID, true
}
