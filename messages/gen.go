// Package messages is the protobuf vocabulary of Fungi: actor messages, the
// CLI↔daemon gRPC API and the peer protocols share these types.
package messages

//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative fungi.proto
