package balancer

// LeastConnections picks the member with the lowest Load; among equally
// loaded members the HRW ranking for the key decides, so the same key on the
// same pool state always lands on the same member.
type LeastConnections struct{}

// Pick implements Strategy.
func (LeastConnections) Pick(key string, members []Member) (string, bool) {
	if len(members) == 0 {
		return "", false
	}
	kh := hashString(key)
	bi, bs := 0, score(kh, members[0].ID)
	for i := 1; i < len(members); i++ {
		m := members[i]
		lm, lb := load(m), load(members[bi])
		if lm > lb {
			continue
		}
		s := score(kh, m.ID)
		if lm < lb || better(s, m.ID, bs, members[bi].ID) {
			bi, bs = i, s
		}
	}
	return members[bi].ID, true
}
