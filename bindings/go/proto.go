package jinanet

import (
	"encoding/binary"
	"errors"
)

// A tiny hand-written subset of jina's protobuf messages (proto/jina.proto), enough to build requests
// and to read what a response says in tests and examples without protoc-gen-go:
//
//	DataRequestProto    { HeaderProto header = 1; repeated RouteProto routes = 3; ... }
//	HeaderProto         { string request_id = 1; StatusProto status = 2; optional string exec_endpoint = 3; ... }
//	StatusProto         { StatusCode code = 1; string description = 2; ... }
//	RouteProto          { string executor = 1; ... }
//	ControlRequestProto { HeaderProto header = 1; Command command = 2; repeated RelatedEntity relatedEntities = 3; }
//	RelatedEntity       { string id = 1; string address = 2; uint32 port = 3; optional uint32 shard_id = 4; }
//
// Fields it does not know are skipped when reading.

// ErrMalformedProto is returned by the Parse functions for bytes that are not valid protobuf.
var ErrMalformedProto = errors.New("jinanet: malformed protobuf message")

// BuildDataRequest serializes DataRequestProto{header{request_id: requestID}}.
func BuildDataRequest(requestID string) []byte {
	header := appendString(nil, 1, requestID)
	return appendBytes(nil, 1, header)
}

// DataRequestInfo is what ParseDataRequest reads from a DataRequestProto.
type DataRequestInfo struct {
	RequestID    string
	ExecEndpoint string
	// StatusCode is header.status.code (0 = SUCCESS, 3 = ERROR, ...).
	StatusCode int
	// StatusDescription is header.status.description.
	StatusDescription string
	// Routes are the executor names of the routes, in order.
	Routes []string
}

// ParseDataRequest reads the request id, endpoint, status and routes of a serialized
// DataRequestProto (e.g. a Response's Body).
func ParseDataRequest(b []byte) (*DataRequestInfo, error) {
	info := &DataRequestInfo{}
	err := walk(b, func(field int, wire int, v uint64, data []byte) error {
		switch {
		case field == 1 && wire == 2:
			return walk(data, func(field int, wire int, v uint64, data []byte) error {
				switch {
				case field == 1 && wire == 2:
					info.RequestID = string(data)
				case field == 3 && wire == 2:
					info.ExecEndpoint = string(data)
				case field == 2 && wire == 2:
					return walk(data, func(field int, wire int, v uint64, data []byte) error {
						switch {
						case field == 1 && wire == 0:
							info.StatusCode = int(v)
						case field == 2 && wire == 2:
							info.StatusDescription = string(data)
						}
						return nil
					})
				}
				return nil
			})
		case field == 3 && wire == 2:
			var executor string
			if err := walk(data, func(field int, wire int, v uint64, data []byte) error {
				if field == 1 && wire == 2 {
					executor = string(data)
				}
				return nil
			}); err != nil {
				return err
			}
			info.Routes = append(info.Routes, executor)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return info, nil
}

// ControlCommand is ControlRequestProto.Command.
type ControlCommand int

// The control commands.
const (
	CommandStatus     ControlCommand = 0
	CommandActivate   ControlCommand = 1
	CommandDeactivate ControlCommand = 2
)

// RelatedEntity is a worker named by a control request. Shard is -1 when it has none.
type RelatedEntity struct {
	ID      string
	Address string
	Port    int
	Shard   int
}

// ControlRequestInfo is what ParseControlRequest reads from a ControlRequestProto.
type ControlRequestInfo struct {
	Command  ControlCommand
	Entities []RelatedEntity
}

// BuildControlRequest serializes ControlRequestProto{command, relatedEntities}.
func BuildControlRequest(command ControlCommand, entities ...RelatedEntity) []byte {
	var b []byte
	if command != 0 {
		b = appendVarintField(b, 2, uint64(command))
	}
	for _, e := range entities {
		var m []byte
		if e.ID != "" {
			m = appendString(m, 1, e.ID)
		}
		if e.Address != "" {
			m = appendString(m, 2, e.Address)
		}
		if e.Port != 0 {
			m = appendVarintField(m, 3, uint64(e.Port))
		}
		if e.Shard >= 0 {
			m = appendVarintField(m, 4, uint64(e.Shard))
		}
		b = appendBytes(b, 3, m)
	}
	return b
}

// ParseControlRequest reads the command and related entities of a serialized ControlRequestProto.
func ParseControlRequest(b []byte) (*ControlRequestInfo, error) {
	info := &ControlRequestInfo{}
	err := walk(b, func(field int, wire int, v uint64, data []byte) error {
		switch {
		case field == 2 && wire == 0:
			info.Command = ControlCommand(v)
		case field == 3 && wire == 2:
			e := RelatedEntity{Shard: -1}
			if err := walk(data, func(field int, wire int, v uint64, data []byte) error {
				switch {
				case field == 1 && wire == 2:
					e.ID = string(data)
				case field == 2 && wire == 2:
					e.Address = string(data)
				case field == 3 && wire == 0:
					e.Port = int(v)
				case field == 4 && wire == 0:
					e.Shard = int(v)
				}
				return nil
			}); err != nil {
				return err
			}
			info.Entities = append(info.Entities, e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return info, nil
}

func appendVarintField(b []byte, field int, v uint64) []byte {
	b = binary.AppendUvarint(b, uint64(field)<<3|0)
	return binary.AppendUvarint(b, v)
}

func appendBytes(b []byte, field int, data []byte) []byte {
	b = binary.AppendUvarint(b, uint64(field)<<3|2)
	b = binary.AppendUvarint(b, uint64(len(data)))
	return append(b, data...)
}

func appendString(b []byte, field int, s string) []byte {
	return appendBytes(b, field, []byte(s))
}

// walk calls f for each top-level field of a message: v for varints (wire 0), data for
// length-delimited fields (wire 2); fixed-size fields are skipped, groups are malformed.
func walk(b []byte, f func(field int, wire int, v uint64, data []byte) error) error {
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return ErrMalformedProto
		}
		b = b[n:]
		field, wire := int(key>>3), int(key&7)
		if field == 0 {
			return ErrMalformedProto
		}
		var v uint64
		var data []byte
		switch wire {
		case 0:
			v, n = binary.Uvarint(b)
			if n <= 0 {
				return ErrMalformedProto
			}
			b = b[n:]
		case 1, 5:
			size := 8
			if wire == 5 {
				size = 4
			}
			if len(b) < size {
				return ErrMalformedProto
			}
			b = b[size:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return ErrMalformedProto
			}
			data = b[n : n+int(l)]
			b = b[n+int(l):]
		default:
			return ErrMalformedProto
		}
		if err := f(field, wire, v, data); err != nil {
			return err
		}
	}
	return nil
}
