package wsengine

// sender stands for a sender in the queue tests (the sentinel's *conn).
type sender struct{ id int }

var testPool Pool[*sender]
