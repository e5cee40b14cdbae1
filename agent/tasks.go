package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Defaults of Options (the reference's background agent keeps 100 finished tasks for 300 s;
// this store also bounds running ones).
const (
	DefaultMaxTasks        = 1000
	DefaultTTL             = 5 * time.Minute
	DefaultSubscriberQueue = 64
	DefaultMaxSubscribers  = 16
)

// RunFunc does a task's work. It should return soon after ctx is done (the task was
// canceled, its MaxLifetime passed or the agent was closed); what it returns then is ignored.
// The result becomes the completed task's status message (a string as a text part,
// anything else as a data part; nil as no message); an error fails the task with its text.
type RunFunc func(ctx context.Context, task *TaskContext) (any, error)

// Options configure a TaskAgent.
type Options struct {
	Card AgentCard // answered by agent.get_card
	Run  RunFunc   // required
	// Background: tasks/send answers "working" at once and the work goes on after the
	// request; otherwise tasks/send waits for the task to end and answers the final Task.
	Background bool
	// MaxTasks bounds the store (running and finished); DefaultMaxTasks when 0.
	MaxTasks int
	// TTL is how long a finished task stays queryable; DefaultTTL when 0.
	TTL time.Duration
	// MaxLifetime cancels a task still running after it (0: no limit).
	MaxLifetime time.Duration
	// SubscriberQueue is each subscriber's event buffer; DefaultSubscriberQueue when 0.
	SubscriberQueue int
	// MaxSubscribers bounds the update streams open on one task (each holds a handler of
	// the serving node until the task ends); DefaultMaxSubscribers when 0.
	MaxSubscribers int
}

// TaskContext is the running task as RunFunc sees it.
type TaskContext struct {
	ID        string
	SessionID string
	Message   Message
	a         *TaskAgent
	e         *entry
}

// Payload is the first part of the task's message (see Message.Payload).
func (tc *TaskContext) Payload() (json.RawMessage, error) { return tc.Message.Payload() }

// Update reports progress: a non-terminal state (working, input-required) with an optional
// message, sent to subscribers. It reports false once the task has ended (for instance
// canceled), so long work can stop early.
func (tc *TaskContext) Update(state TaskState, msg *Message) bool {
	if state.Terminal() {
		return false // the task ends by RunFunc returning, or by cancellation
	}
	return tc.a.transition(tc.e, TaskStatus{State: state, Message: msg, Timestamp: time.Now().UTC()})
}

// Artifact records an output and sends it to subscribers; false once the task has ended.
func (tc *TaskContext) Artifact(art Artifact) bool {
	a := tc.a
	a.mu.Lock()
	defer a.mu.Unlock()
	if tc.e.task.Status.State.Terminal() {
		return false
	}
	tc.e.task.Artifacts = append(tc.e.task.Artifacts, art)
	a.publishLocked(tc.e, TaskEvent{Artifact: &TaskArtifactUpdateEvent{ID: tc.ID, Artifact: art}})
	return true
}

// entry is one task in the store; a.mu guards every field.
type entry struct {
	task     Task
	cancel   context.CancelFunc
	done     chan struct{} // closed when the task reaches a terminal state
	finished time.Time
	subs     map[*subscriber]struct{}
}

// subscriber is one update stream; its channel is closed when the task ends, the stream is
// unsubscribed, or it fell behind (dropped set).
type subscriber struct {
	ch      chan TaskEvent
	dropped bool
}

// TaskAgent is an Agent over a RunFunc with a bounded in-memory task store.
type TaskAgent struct {
	opts   Options
	ctx    context.Context // parent of every task's context; canceled by Close
	stop   context.CancelFunc
	wg     sync.WaitGroup // task goroutines
	mu     sync.Mutex
	tasks  map[string]*entry
	closed bool
}

// New builds a TaskAgent. Close it to cancel and wait for its tasks.
func New(opts Options) (*TaskAgent, error) {
	if opts.Run == nil {
		return nil, errors.New("agent: Options.Run is required")
	}
	if opts.MaxTasks < 0 || opts.TTL < 0 || opts.MaxLifetime < 0 || opts.SubscriberQueue < 0 || opts.MaxSubscribers < 0 {
		return nil, errors.New("agent: negative option")
	}
	if opts.MaxTasks == 0 {
		opts.MaxTasks = DefaultMaxTasks
	}
	if opts.TTL == 0 {
		opts.TTL = DefaultTTL
	}
	if opts.SubscriberQueue == 0 {
		opts.SubscriberQueue = DefaultSubscriberQueue
	}
	if opts.MaxSubscribers == 0 {
		opts.MaxSubscribers = DefaultMaxSubscribers
	}
	if opts.Card.DefaultInputModes == nil {
		opts.Card.DefaultInputModes = []string{"text"}
	}
	if opts.Card.DefaultOutputModes == nil {
		opts.Card.DefaultOutputModes = []string{"text"}
	}
	if opts.Card.Skills == nil {
		opts.Card.Skills = []AgentSkill{}
	}
	opts.Card.Capabilities.Streaming = true // tasks/sendSubscribe is always served
	ctx, stop := context.WithCancel(context.Background())
	return &TaskAgent{opts: opts, ctx: ctx, stop: stop, tasks: map[string]*entry{}}, nil
}

// Close cancels every running task (state canceled), ends every subscription and waits for
// the task goroutines to return.
func (a *TaskAgent) Close() error {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.stop()
	a.wg.Wait()
	return nil
}

// AgentCard answers agent.get_card.
func (a *TaskAgent) AgentCard(context.Context) (AgentCard, error) { return a.opts.Card, nil }

// StartTask answers tasks/send.
func (a *TaskAgent) StartTask(ctx context.Context, p TaskSendParams) (Task, error) {
	e, err := a.start(p)
	if err != nil {
		return Task{}, err
	}
	if !a.opts.Background {
		select {
		case <-e.done:
		case <-ctx.Done():
			return Task{}, ctx.Err()
		}
	}
	return a.snapshot(e), nil
}

// GetTaskStatus answers tasks/get.
func (a *TaskAgent) GetTaskStatus(_ context.Context, p TaskQueryParams) (Task, error) {
	e, err := a.find(p.ID)
	if err != nil {
		return Task{}, err
	}
	return a.snapshot(e), nil
}

// CancelTask answers tasks/cancel: a running task becomes canceled at once and its context
// is canceled; a finished task is answered as it is.
func (a *TaskAgent) CancelTask(_ context.Context, p TaskIDParams) (Task, error) {
	e, err := a.find(p.ID)
	if err != nil {
		return Task{}, err
	}
	a.transition(e, TaskStatus{State: StateCanceled, Timestamp: time.Now().UTC()})
	return a.snapshot(e), nil
}

// SubscribeToTaskUpdates answers tasks/sendSubscribe: it starts the task when its id is
// new (a task that exists is only subscribed to), emits the current status, then every
// update until the task ends (the last event has final true).
func (a *TaskAgent) SubscribeToTaskUpdates(ctx context.Context, p TaskSendParams, emit func(TaskEvent) error) error {
	if p.ID == "" {
		return fmt.Errorf("%w: missing id", ErrInvalidTask)
	}
	a.mu.Lock()
	e := a.liveLocked(p.ID)
	a.mu.Unlock()
	if e == nil {
		var err error
		if e, err = a.start(p); err != nil {
			return err
		}
	}
	return a.follow(ctx, e, emit)
}

// ResubscribeTask answers tasks/resubscribe: the update stream of a task this agent already
// has (its current status first, then every update until it ends), as tasks/sendSubscribe
// but never starting one: an unknown or expired id is ErrTaskNotFound (-32001). It is what a
// client reconnecting to a running task calls; tasks/sendSubscribe with the id would start a
// second task on an agent that does not have it.
func (a *TaskAgent) ResubscribeTask(ctx context.Context, p TaskIDParams, emit func(TaskEvent) error) error {
	if p.ID == "" {
		return fmt.Errorf("%w: missing id", ErrInvalidTask)
	}
	a.mu.Lock()
	e := a.liveLocked(p.ID)
	a.mu.Unlock()
	if e == nil {
		return fmt.Errorf("%w: %s", ErrTaskNotFound, p.ID)
	}
	return a.follow(ctx, e, emit)
}

// follow streams e's status and updates to emit until the task ends, the subscriber is
// dropped or ctx is done.
func (a *TaskAgent) follow(ctx context.Context, e *entry, emit func(TaskEvent) error) error {
	s := &subscriber{ch: make(chan TaskEvent, a.opts.SubscriberQueue)}
	a.mu.Lock()
	first := TaskEvent{Status: &TaskStatusUpdateEvent{ID: e.task.ID, Status: e.task.Status, Final: e.task.Status.State.Terminal()}}
	if !first.Status.Final {
		if len(e.subs) >= a.opts.MaxSubscribers {
			a.mu.Unlock()
			return fmt.Errorf("%w: task %s already has %d update streams (max_subscribers)", ErrRateLimitExceeded, e.task.ID, a.opts.MaxSubscribers)
		}
		e.subs[s] = struct{}{}
	}
	a.mu.Unlock()
	if err := emit(first); err != nil || first.Status.Final {
		a.unsubscribe(e, s)
		return err
	}
	defer a.unsubscribe(e, s)
	for {
		select {
		case ev, ok := <-s.ch:
			if !ok {
				a.mu.Lock()
				dropped := s.dropped
				a.mu.Unlock()
				if dropped {
					return fmt.Errorf("agent: task %s: subscriber fell %d events behind", e.task.ID, a.opts.SubscriberQueue)
				}
				return nil
			}
			if err := emit(ev); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// UnsubscribeTask answers tasks/sendUnsubscribe: every update stream of the task ends.
func (a *TaskAgent) UnsubscribeTask(_ context.Context, p TaskIDParams) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e := a.liveLocked(p.ID); e != nil {
		for s := range e.subs {
			delete(e.subs, s)
			close(s.ch)
		}
	}
	return nil
}

func (a *TaskAgent) unsubscribe(e *entry, s *subscriber) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := e.subs[s]; ok {
		delete(e.subs, s)
		close(s.ch)
	}
}

// start admits a task into the store and runs it on a goroutine the agent owns.
func (a *TaskAgent) start(p TaskSendParams) (*entry, error) {
	if p.ID == "" {
		return nil, fmt.Errorf("%w: missing id", ErrInvalidTask)
	}
	if p.Message.Role != "user" && p.Message.Role != "agent" {
		return nil, fmt.Errorf("%w: message role must be user or agent, got %q", ErrInvalidTask, p.Message.Role)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, fmt.Errorf("%w: the agent is closing", ErrUnsupported)
	}
	if old := a.liveLocked(p.ID); old != nil {
		if !old.task.Status.State.Terminal() {
			return nil, fmt.Errorf("%w: task %s is running", ErrDuplicateTask, p.ID)
		}
		delete(a.tasks, p.ID) // a finished id may be run again
	}
	if len(a.tasks) >= a.opts.MaxTasks && !a.evictLocked() {
		return nil, fmt.Errorf("%w: %d tasks are running (max_tasks)", ErrRateLimitExceeded, len(a.tasks))
	}
	var ctx context.Context
	var cancel context.CancelFunc
	if a.opts.MaxLifetime > 0 {
		ctx, cancel = context.WithTimeout(a.ctx, a.opts.MaxLifetime)
	} else {
		ctx, cancel = context.WithCancel(a.ctx)
	}
	e := &entry{
		task:   Task{ID: p.ID, SessionID: p.SessionID, Status: TaskStatus{State: StateWorking, Timestamp: time.Now().UTC()}, Metadata: p.Metadata},
		cancel: cancel,
		done:   make(chan struct{}),
		subs:   map[*subscriber]struct{}{},
	}
	a.tasks[p.ID] = e
	// Cancellation from any side (tasks/cancel, MaxLifetime, Close) shows as canceled at
	// once, even while RunFunc has not returned yet.
	context.AfterFunc(ctx, func() { a.transition(e, TaskStatus{State: StateCanceled, Timestamp: time.Now().UTC()}) })
	tc := &TaskContext{ID: p.ID, SessionID: p.SessionID, Message: p.Message, a: a, e: e}
	a.wg.Add(1)
	go a.run(ctx, tc)
	return e, nil
}

func (a *TaskAgent) run(ctx context.Context, tc *TaskContext) {
	defer a.wg.Done()
	defer tc.e.cancel()
	res, err := a.call(ctx, tc)
	st := TaskStatus{State: StateCompleted, Timestamp: time.Now().UTC()}
	if ctx.Err() != nil {
		// Cancelled (tasks/cancel, MaxLifetime, Close): what RunFunc returned is ignored. The
		// AfterFunc above may not have run yet, so the state is set here too.
		a.transition(tc.e, TaskStatus{State: StateCanceled, Timestamp: st.Timestamp})
		return
	}
	if err != nil {
		m, _ := NewMessage("agent", err.Error())
		st.State, st.Message = StateFailed, &m
	} else if res != nil {
		m, merr := NewMessage("agent", res)
		if merr != nil {
			m, _ = NewMessage("agent", merr.Error())
			st.State = StateFailed
		}
		st.Message = &m
	}
	a.transition(tc.e, st) // no-op when canceled meanwhile
}

// call runs RunFunc, turning a panic into a failure of this task only.
func (a *TaskAgent) call(ctx context.Context, tc *TaskContext) (res any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("agent: task %s panicked: %v", tc.ID, r)
		}
	}()
	return a.opts.Run(ctx, tc)
}

// transition moves e to st unless it already ended; it reports whether it did.
func (a *TaskAgent) transition(e *entry, st TaskStatus) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e.task.Status.State.Terminal() {
		return false
	}
	e.task.Status = st
	final := st.State.Terminal()
	a.publishLocked(e, TaskEvent{Status: &TaskStatusUpdateEvent{ID: e.task.ID, Status: st, Final: final}})
	if final {
		e.finished = time.Now()
		close(e.done)
		for s := range e.subs {
			delete(e.subs, s)
			close(s.ch)
		}
		e.cancel()
	}
	return true
}

// publishLocked queues ev for every subscriber; one whose queue is full is dropped rather
// than blocking the task.
func (a *TaskAgent) publishLocked(e *entry, ev TaskEvent) {
	for s := range e.subs {
		select {
		case s.ch <- ev:
		default:
			s.dropped = true
			delete(e.subs, s)
			close(s.ch)
		}
	}
}

// liveLocked is the task with id unless it expired (then it is forgotten).
func (a *TaskAgent) liveLocked(id string) *entry {
	e := a.tasks[id]
	if e != nil && !e.finished.IsZero() && time.Since(e.finished) > a.opts.TTL {
		delete(a.tasks, id)
		return nil
	}
	return e
}

// evictLocked makes room: every expired task goes, else the oldest finished one. It
// reports false when every task is still running.
func (a *TaskAgent) evictLocked() bool {
	var oldest *entry
	freed := false
	for id, e := range a.tasks {
		if e.finished.IsZero() {
			continue
		}
		if time.Since(e.finished) > a.opts.TTL {
			delete(a.tasks, id)
			freed = true
			continue
		}
		if oldest == nil || e.finished.Before(oldest.finished) {
			oldest = e
		}
	}
	if !freed && oldest != nil {
		delete(a.tasks, oldest.task.ID)
		freed = true
	}
	return freed
}

func (a *TaskAgent) find(id string) (*entry, error) {
	if id == "" {
		return nil, fmt.Errorf("%w: missing id", ErrInvalidTask)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if e := a.liveLocked(id); e != nil {
		return e, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrTaskNotFound, id)
}

// snapshot copies the task so callers never share the store's slices.
func (a *TaskAgent) snapshot(e *entry) Task {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := e.task
	t.Artifacts = append([]Artifact(nil), e.task.Artifacts...)
	return t
}
