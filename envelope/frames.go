package envelope

import (
	"encoding/json"
	"fmt"
)

// Frame type names as they appear in frame.type.
const (
	TypeNodeAttach             = "NodeAttach"
	TypeNodeAttachAck          = "NodeAttachAck"
	TypeNodeHello              = "NodeHello"
	TypeNodeWelcome            = "NodeWelcome"
	TypeNodeReject             = "NodeReject"
	TypeAddressBind            = "AddressBind"
	TypeAddressBindAck         = "AddressBindAck"
	TypeAddressUnbind          = "AddressUnbind"
	TypeAddressUnbindAck       = "AddressUnbindAck"
	TypeCapabilityAdvertise    = "CapabilityAdvertise"
	TypeCapabilityAdvertiseAck = "CapabilityAdvertiseAck"
	TypeCapabilityWithdraw     = "CapabilityWithdraw"
	TypeCapabilityWithdrawAck  = "CapabilityWithdrawAck"
	TypeData                   = "Data"
	TypeDeliveryAck            = "DeliveryAck"
	TypeCreditUpdate           = "CreditUpdate"
	TypeNodeHeartbeat          = "NodeHeartbeat"
	TypeNodeHeartbeatAck       = "NodeHeartbeatAck"
	TypeKeyRequest             = "KeyRequest"
	TypeKeyAnnounce            = "KeyAnnounce"
	TypeSecureOpen             = "SecureOpen"
	TypeSecureAccept           = "SecureAccept"
	TypeSecureClose            = "SecureClose"
)

// Delivery-ack codes the reference runtime uses.
const (
	CodeNoRoute              = "NO_ROUTE"
	CodeUnauthorized         = "UNAUTHORIZED"
	CodeRouteConnectorClosed = "ROUTE_CONNECTOR_CLOSED"
	CodeChildUnreachable     = "CHILD_UNREACHABLE"
	CodePeerUnreachable      = "PEER_UNREACHABLE"
	// CodeChannelClosed (fame-go) nacks a request encrypted for a channel the sentinel closed
	// (its replica left or was drained): the client re-opens the channel and re-sends.
	CodeChannelClosed     = "CHANNEL_CLOSED"
	CodeMessageTooLarge   = "MESSAGE_TOO_LARGE"
	CodeSignatureRequired = "signature_required"
	CodeSignatureInvalid  = "signature_invalid"
	CodeOverloaded        = "OVERLOADED"
)

// Frame is implemented by every typed frame.
type Frame interface{ FrameType() string }

// Ack holds the fields every acknowledgement frame shares with DeliveryAck.
type Ack struct {
	OK     bool   `json:"ok"`
	Code   string `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
	RefID  string `json:"refId,omitempty"`
}

type Data struct {
	Payload json.RawMessage `json:"payload,omitempty"`
	Codec   string          `json:"codec,omitempty"`
	PD      string          `json:"pd,omitempty"`
	FID     string          `json:"fid,omitempty"`
	CID     string          `json:"cid,omitempty"`
	Nonce   string          `json:"nonce,omitempty"`
}

type DeliveryAck struct{ Ack }

type NodeAttach struct {
	OriginType       string            `json:"originType,omitempty"`
	SystemID         string            `json:"systemId"`
	InstanceID       string            `json:"instanceId,omitempty"`
	AssignedPath     string            `json:"assignedPath,omitempty"`
	Capabilities     []string          `json:"capabilities,omitempty"`
	AcceptedLogicals []string          `json:"acceptedLogicals,omitempty"`
	Keys             []json.RawMessage `json:"keys,omitempty"`
	CallbackGrants   []json.RawMessage `json:"callbackGrants,omitempty"`
	Stickiness       json.RawMessage   `json:"stickiness,omitempty"`
}

// NodeAttachAck carries its main fields twice, camelCase and snake_case, as the reference
// sentinel does; use NewNodeAttachAck to fill both.
type NodeAttachAck struct {
	Ack
	TargetSystemID     string            `json:"targetSystemId,omitempty"`
	AssignedPath       string            `json:"assignedPath,omitempty"`
	TargetPhysicalPath string            `json:"targetPhysicalPath,omitempty"`
	RoutingEpoch       string            `json:"routingEpoch,omitempty"`
	Keys               []json.RawMessage `json:"keys,omitempty"`
	ExpiresAt          string            `json:"expiresAt,omitempty"`
	Stickiness         json.RawMessage   `json:"stickiness,omitempty"`

	RefIDSnake              string `json:"ref_id,omitempty"`
	TargetSystemIDSnake     string `json:"target_system_id,omitempty"`
	TargetPhysicalPathSnake string `json:"target_physical_path,omitempty"`
	RoutingEpochSnake       string `json:"routing_epoch,omitempty"`
	AssignedPathSnake       string `json:"assigned_path,omitempty"`
}

// NewNodeAttachAck returns a positive ack with the snake_case duplicates filled in.
func NewNodeAttachAck(refID, targetSystemID, assignedPath, targetPhysicalPath, epoch string) *NodeAttachAck {
	return &NodeAttachAck{
		Ack:            Ack{OK: true, RefID: refID},
		TargetSystemID: targetSystemID, AssignedPath: assignedPath,
		TargetPhysicalPath: targetPhysicalPath, RoutingEpoch: epoch,
		RefIDSnake: refID, TargetSystemIDSnake: targetSystemID,
		TargetPhysicalPathSnake: targetPhysicalPath, RoutingEpochSnake: epoch,
		AssignedPathSnake: assignedPath,
	}
}

type NodeHello struct {
	SystemID            string          `json:"systemId"`
	InstanceID          string          `json:"instanceId,omitempty"`
	Logicals            []string        `json:"logicals,omitempty"`
	Capabilities        []string        `json:"capabilities,omitempty"`
	SupportedTransports []string        `json:"supportedTransports,omitempty"`
	RegionHint          string          `json:"regionHint,omitempty"`
	SecuritySettings    json.RawMessage `json:"securitySettings,omitempty"`
}

type NodeWelcome struct {
	SystemID             string            `json:"systemId"`
	TargetSystemID       string            `json:"targetSystemId,omitempty"`
	TargetPhysicalPath   string            `json:"targetPhysicalPath,omitempty"`
	InstanceID           string            `json:"instanceId,omitempty"`
	AssignedPath         string            `json:"assignedPath,omitempty"`
	AcceptedCapabilities []string          `json:"acceptedCapabilities,omitempty"`
	AcceptedLogicals     []string          `json:"acceptedLogicals,omitempty"`
	RejectedLogicals     []string          `json:"rejectedLogicals,omitempty"`
	ConnectionGrants     []json.RawMessage `json:"connectionGrants,omitempty"`
	ExpiresAt            string            `json:"expiresAt,omitempty"`
	Metadata             json.RawMessage   `json:"metadata,omitempty"`
	Reason               string            `json:"reason,omitempty"`
	SecuritySettings     json.RawMessage   `json:"securitySettings,omitempty"`
}

type NodeReject struct {
	Reason string `json:"reason,omitempty"`
}

type AddressBind struct {
	Address         string `json:"address"`
	PhysicalPath    string `json:"physicalPath,omitempty"`
	EncryptionKeyID string `json:"encryptionKeyId,omitempty"`
}

type AddressBindAck struct {
	Ack
	Address string `json:"address,omitempty"`
}

type AddressUnbind struct {
	Address string `json:"address"`
}

type AddressUnbindAck struct {
	Ack
	Address string `json:"address,omitempty"`
}

type CapabilityAdvertise struct {
	Capabilities []string `json:"capabilities"`
	Address      string   `json:"address"`
}

type CapabilityAdvertiseAck struct {
	Ack
	Capabilities []string `json:"capabilities,omitempty"`
	Address      string   `json:"address,omitempty"`
}

type CapabilityWithdraw struct {
	Capabilities []string `json:"capabilities"`
	Address      string   `json:"address"`
}

type CapabilityWithdrawAck struct {
	Ack
	Capabilities []string `json:"capabilities,omitempty"`
	Address      string   `json:"address,omitempty"`
}

type CreditUpdate struct {
	FlowID  string `json:"flowId"`
	Credits int    `json:"credits"`
}

type NodeHeartbeat struct {
	Address  string          `json:"address,omitempty"`
	SystemID string          `json:"systemId,omitempty"`
	Payload  json.RawMessage `json:"payload,omitempty"`
}

type NodeHeartbeatAck struct {
	Ack
	Address      string          `json:"address,omitempty"`
	RoutingEpoch string          `json:"routingEpoch,omitempty"`
	Payload      json.RawMessage `json:"payload,omitempty"`
}

type KeyRequest struct {
	Kid          string `json:"kid,omitempty"`
	Address      string `json:"address,omitempty"`
	PhysicalPath string `json:"physicalPath,omitempty"`
}

type KeyAnnounce struct {
	Address      string            `json:"address,omitempty"`
	PhysicalPath string            `json:"physicalPath"`
	Keys         []json.RawMessage `json:"keys"`
	Created      string            `json:"created,omitempty"`
	Expires      string            `json:"expires,omitempty"`
}

type SecureOpen struct {
	CID    string `json:"cid"`
	EphPub string `json:"ephPub"`
	Alg    string `json:"alg,omitempty"`
	Opts   int    `json:"opts"`
}

type SecureAccept struct {
	Ack
	CID    string `json:"cid"`
	EphPub string `json:"ephPub,omitempty"`
	Alg    string `json:"alg,omitempty"`
}

type SecureClose struct {
	CID    string `json:"cid"`
	Reason string `json:"reason,omitempty"`
}

// UnknownFrame is a frame whose type this version does not know. Its bytes are kept.
type UnknownFrame struct {
	Type string
	Raw  json.RawMessage
}

func (*Data) FrameType() string                   { return TypeData }
func (*DeliveryAck) FrameType() string            { return TypeDeliveryAck }
func (*NodeAttach) FrameType() string             { return TypeNodeAttach }
func (*NodeAttachAck) FrameType() string          { return TypeNodeAttachAck }
func (*NodeHello) FrameType() string              { return TypeNodeHello }
func (*NodeWelcome) FrameType() string            { return TypeNodeWelcome }
func (*NodeReject) FrameType() string             { return TypeNodeReject }
func (*AddressBind) FrameType() string            { return TypeAddressBind }
func (*AddressBindAck) FrameType() string         { return TypeAddressBindAck }
func (*AddressUnbind) FrameType() string          { return TypeAddressUnbind }
func (*AddressUnbindAck) FrameType() string       { return TypeAddressUnbindAck }
func (*CapabilityAdvertise) FrameType() string    { return TypeCapabilityAdvertise }
func (*CapabilityAdvertiseAck) FrameType() string { return TypeCapabilityAdvertiseAck }
func (*CapabilityWithdraw) FrameType() string     { return TypeCapabilityWithdraw }
func (*CapabilityWithdrawAck) FrameType() string  { return TypeCapabilityWithdrawAck }
func (*CreditUpdate) FrameType() string           { return TypeCreditUpdate }
func (*NodeHeartbeat) FrameType() string          { return TypeNodeHeartbeat }
func (*NodeHeartbeatAck) FrameType() string       { return TypeNodeHeartbeatAck }
func (*KeyRequest) FrameType() string             { return TypeKeyRequest }
func (*KeyAnnounce) FrameType() string            { return TypeKeyAnnounce }
func (*SecureOpen) FrameType() string             { return TypeSecureOpen }
func (*SecureAccept) FrameType() string           { return TypeSecureAccept }
func (*SecureClose) FrameType() string            { return TypeSecureClose }
func (u *UnknownFrame) FrameType() string         { return u.Type }

// newFrame returns an empty typed frame for a type name, with ack frames' ok defaulting to
// true as the reference's schema does.
func newFrame(t string) Frame {
	ack := Ack{OK: true}
	switch t {
	case TypeData:
		return &Data{}
	case TypeDeliveryAck:
		return &DeliveryAck{ack}
	case TypeNodeAttach:
		return &NodeAttach{}
	case TypeNodeAttachAck:
		return &NodeAttachAck{Ack: ack}
	case TypeNodeHello:
		return &NodeHello{}
	case TypeNodeWelcome:
		return &NodeWelcome{}
	case TypeNodeReject:
		return &NodeReject{}
	case TypeAddressBind:
		return &AddressBind{}
	case TypeAddressBindAck:
		return &AddressBindAck{Ack: ack}
	case TypeAddressUnbind:
		return &AddressUnbind{}
	case TypeAddressUnbindAck:
		return &AddressUnbindAck{Ack: ack}
	case TypeCapabilityAdvertise:
		return &CapabilityAdvertise{}
	case TypeCapabilityAdvertiseAck:
		return &CapabilityAdvertiseAck{Ack: ack}
	case TypeCapabilityWithdraw:
		return &CapabilityWithdraw{}
	case TypeCapabilityWithdrawAck:
		return &CapabilityWithdrawAck{Ack: ack}
	case TypeCreditUpdate:
		return &CreditUpdate{}
	case TypeNodeHeartbeat:
		return &NodeHeartbeat{}
	case TypeNodeHeartbeatAck:
		return &NodeHeartbeatAck{Ack: ack}
	case TypeKeyRequest:
		return &KeyRequest{}
	case TypeKeyAnnounce:
		return &KeyAnnounce{}
	case TypeSecureOpen:
		return &SecureOpen{Alg: "CHACHA20P1305"}
	case TypeSecureAccept:
		return &SecureAccept{Ack: ack}
	case TypeSecureClose:
		return &SecureClose{}
	}
	return nil
}

// DecodeFrame decodes the envelope's frame into its typed struct. A frame of an unknown type
// is returned as *UnknownFrame, not as an error.
func (e *Envelope) DecodeFrame() (Frame, error) { return ParseFrame(e.Frame) }

// ParseFrame decodes a raw frame object.
func ParseFrame(raw json.RawMessage) (Frame, error) {
	t, err := frameTypeOf(raw)
	if err != nil {
		return nil, err
	}
	if t == TypeData {
		if d, ok := parseData(raw); ok {
			return d, nil
		}
	}
	f := newFrame(t)
	if f == nil {
		return &UnknownFrame{Type: t, Raw: raw}, nil
	}
	if err := json.Unmarshal(raw, f); err != nil {
		return nil, fmt.Errorf("frame %s: %w: %v", t, ErrFieldType, err)
	}
	return f, nil
}

// EncodeFrame encodes f with "type" as its first key.
func EncodeFrame(f Frame) (json.RawMessage, error) {
	switch v := f.(type) {
	case *UnknownFrame:
		return v.Raw, nil
	case *Data:
		if raw, ok := encodeData(v); ok {
			return raw, nil
		}
	}
	return encodeFrameReflect(f)
}

// encodeFrameReflect is EncodeFrame through json.Marshal, for every frame type.
func encodeFrameReflect(f Frame) (json.RawMessage, error) {
	body, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", f.FrameType(), err)
	}
	out := make([]byte, 0, len(body)+len(f.FrameType())+12)
	out = append(out, `{"type":`...)
	out = appendJSONString(out, f.FrameType())
	if len(body) > 2 {
		out = append(out, ',')
	}
	return append(out, body[1:]...), nil
}

// New returns a fresh envelope (version, new id, ts now) carrying f.
func New(f Frame) (*Envelope, error) {
	raw, err := EncodeFrame(f)
	if err != nil {
		return nil, err
	}
	return &Envelope{Version: Version, ID: NewID(), Frame: raw, TS: Now()}, nil
}

// Sec is the security header.
type Sec struct {
	Sig *Signature  `json:"sig,omitempty"`
	Enc *Encryption `json:"enc,omitempty"`
}

// Signature is sec.sig.
type Signature struct {
	Kid string `json:"kid,omitempty"`
	Val string `json:"val"`
	Alg string `json:"alg,omitempty"`
}

// Encryption is sec.enc.
type Encryption struct {
	Alg string `json:"alg,omitempty"`
	Kid string `json:"kid,omitempty"`
	Val string `json:"val,omitempty"`
}

// ParseSec decodes the security header; an envelope without one gives (nil, nil).
func (e *Envelope) ParseSec() (*Sec, error) {
	if len(e.Sec) == 0 {
		return nil, nil
	}
	if err := CheckSec(e.Sec); err != nil {
		return nil, fmt.Errorf("sec: %w", err)
	}
	var s Sec
	if err := json.Unmarshal(e.Sec, &s); err != nil {
		return nil, fmt.Errorf("sec: %w: %v", ErrFieldType, err)
	}
	return &s, nil
}
