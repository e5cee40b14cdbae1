package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// TaskState is an A2A task state, spelled as on the wire.
type TaskState string

// The reference's task states.
const (
	StateSubmitted     TaskState = "submitted"
	StateWorking       TaskState = "working"
	StateInputRequired TaskState = "input-required"
	StateCompleted     TaskState = "completed"
	StateCanceled      TaskState = "canceled"
	StateFailed        TaskState = "failed"
	StateUnknown       TaskState = "unknown"
)

// Terminal reports whether no further transition follows s.
func (s TaskState) Terminal() bool {
	return s == StateCompleted || s == StateCanceled || s == StateFailed
}

// Part is one part of a Message: type "text" (Text), "data" (Data, a JSON object) or "file"
// (File).
type Part struct {
	Type     string          `json:"type"`
	Text     string          `json:"text,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
	File     *FileContent    `json:"file,omitempty"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// FileContent is a file part's content: exactly one of Bytes (base64) and URI.
type FileContent struct {
	Name     string `json:"name,omitempty"`
	MimeType string `json:"mimeType,omitempty"`
	Bytes    string `json:"bytes,omitempty"`
	URI      string `json:"uri,omitempty"`
}

// Message is what a user or an agent says: role "user" or "agent".
type Message struct {
	Role     string          `json:"role"`
	Parts    []Part          `json:"parts"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// TaskStatus is a task's state at Timestamp, with an optional message (the result of a
// completed task, the error text of a failed one).
type TaskStatus struct {
	State     TaskState `json:"state"`
	Message   *Message  `json:"message,omitempty"`
	Timestamp time.Time `json:"timestamp"`
}

// Artifact is an output of a task.
type Artifact struct {
	Name        string          `json:"name,omitempty"`
	Description string          `json:"description,omitempty"`
	Parts       []Part          `json:"parts"`
	Metadata    json.RawMessage `json:"metadata,omitempty"`
	Index       int             `json:"index"`
	Append      *bool           `json:"append,omitempty"`
	LastChunk   *bool           `json:"lastChunk,omitempty"`
}

// Task is the answer of tasks/send, tasks/get and tasks/cancel.
type Task struct {
	ID        string          `json:"id"`
	SessionID string          `json:"sessionId,omitempty"`
	Status    TaskStatus      `json:"status"`
	Artifacts []Artifact      `json:"artifacts,omitempty"`
	History   []Message       `json:"history,omitempty"`
	Metadata  json.RawMessage `json:"metadata,omitempty"`
}

// TaskStatusUpdateEvent is a stream item of tasks/sendSubscribe: the task moved to Status.
type TaskStatusUpdateEvent struct {
	ID       string          `json:"id"`
	Status   TaskStatus      `json:"status"`
	Final    bool            `json:"final"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// TaskArtifactUpdateEvent is a stream item of tasks/sendSubscribe: the task produced Artifact.
type TaskArtifactUpdateEvent struct {
	ID       string          `json:"id"`
	Artifact Artifact        `json:"artifact"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// TaskEvent is one item of a task's update stream: exactly one of Status and Artifact.
type TaskEvent struct {
	Status   *TaskStatusUpdateEvent
	Artifact *TaskArtifactUpdateEvent
}

// MarshalJSON writes the event that is set, as the reference streams it.
func (e TaskEvent) MarshalJSON() ([]byte, error) {
	if e.Artifact != nil {
		return json.Marshal(e.Artifact)
	}
	if e.Status != nil {
		return json.Marshal(e.Status)
	}
	return nil, errors.New("agent: empty TaskEvent")
}

// UnmarshalJSON tells the two event kinds apart by the "artifact" key, as the reference's proxy does.
func (e *TaskEvent) UnmarshalJSON(b []byte) error {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return err
	}
	if _, ok := probe["artifact"]; ok {
		e.Artifact, e.Status = new(TaskArtifactUpdateEvent), nil
		return json.Unmarshal(b, e.Artifact)
	}
	if _, ok := probe["status"]; !ok {
		return fmt.Errorf("agent: task event has neither status nor artifact")
	}
	e.Status, e.Artifact = new(TaskStatusUpdateEvent), nil
	return json.Unmarshal(b, e.Status)
}

// PushNotificationConfig is accepted in TaskSendParams for shape compatibility; push
// notifications themselves are not supported (as in the reference's base agent).
type PushNotificationConfig struct {
	URL   string `json:"url"`
	Token string `json:"token,omitempty"`
}

// TaskSendParams are the params of tasks/send and tasks/sendSubscribe.
type TaskSendParams struct {
	ID                  string                  `json:"id"`
	SessionID           string                  `json:"sessionId,omitempty"`
	Message             Message                 `json:"message"`
	AcceptedOutputModes []string                `json:"acceptedOutputModes,omitempty"`
	PushNotification    *PushNotificationConfig `json:"pushNotification,omitempty"`
	HistoryLength       *int                    `json:"historyLength,omitempty"`
	Metadata            json.RawMessage         `json:"metadata,omitempty"`
}

// TaskIDParams are the params of tasks/cancel, tasks/sendUnsubscribe and tasks/resubscribe.
type TaskIDParams struct {
	ID       string          `json:"id"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// TaskQueryParams are the params of tasks/get.
type TaskQueryParams struct {
	ID            string          `json:"id"`
	HistoryLength *int            `json:"historyLength,omitempty"`
	Metadata      json.RawMessage `json:"metadata,omitempty"`
}

// AgentCard describes an agent (agent.get_card).
type AgentCard struct {
	Name               string            `json:"name"`
	Description        string            `json:"description,omitempty"`
	URL                string            `json:"url"`
	Version            string            `json:"version"`
	DocumentationURL   string            `json:"documentationUrl,omitempty"`
	Capabilities       AgentCapabilities `json:"capabilities"`
	DefaultInputModes  []string          `json:"defaultInputModes"`
	DefaultOutputModes []string          `json:"defaultOutputModes"`
	Skills             []AgentSkill      `json:"skills"`
}

// AgentCapabilities are the card's feature flags.
type AgentCapabilities struct {
	Streaming              bool `json:"streaming"`
	PushNotifications      bool `json:"pushNotifications"`
	StateTransitionHistory bool `json:"stateTransitionHistory"`
}

// AgentSkill is one skill on the card.
type AgentSkill struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	Examples    []string `json:"examples,omitempty"`
}

// NewMessage wraps a payload in a one-part Message as the reference does: a string becomes a
// text part, anything else (nil as {}) a data part. json.RawMessage is taken as it is.
func NewMessage(role string, payload any) (Message, error) {
	if s, ok := payload.(string); ok {
		return Message{Role: role, Parts: []Part{{Type: "text", Text: s}}}, nil
	}
	var data json.RawMessage
	switch p := payload.(type) {
	case nil:
		data = json.RawMessage("{}")
	case json.RawMessage:
		data = p
	default:
		b, err := json.Marshal(p)
		if err != nil {
			return Message{}, fmt.Errorf("agent: message payload: %w", err)
		}
		data = b
	}
	return Message{Role: role, Parts: []Part{{Type: "data", Data: data}}}, nil
}

// Payload is the reference's reading of a message: the first part's text as a JSON string,
// or its data; nil for no message or no parts.
func (m *Message) Payload() (json.RawMessage, error) {
	if m == nil || len(m.Parts) == 0 {
		return nil, nil
	}
	switch p := m.Parts[0]; p.Type {
	case "text":
		return json.Marshal(p.Text)
	case "data":
		return p.Data, nil
	default:
		return nil, fmt.Errorf("agent: cannot read a payload from a %q part", p.Type)
	}
}

// MarshalJSON always writes "text" for a text part (even empty: the reference's schema
// requires the key) and leaves the other kinds' keys out.
func (p Part) MarshalJSON() ([]byte, error) {
	type plain Part // no methods: no recursion
	if p.Type != "text" {
		return json.Marshal(plain(p))
	}
	return json.Marshal(struct {
		Type     string          `json:"type"`
		Text     string          `json:"text"`
		Metadata json.RawMessage `json:"metadata,omitempty"`
	}{p.Type, p.Text, p.Metadata})
}
