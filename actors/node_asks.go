package actors

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/fungi-go/fungi/messages"
)

// The typed asks of Node: one method for each request the daemon makes of
// the tree, answering in the request's own answer type, so that a caller
// needs no type assertion and an actor answering with the wrong type is an
// error to report, not a panic in the API.

// askAs asks pid and returns the answer as T. An *Error answer is the
// error, as with ask.
func askAs[T any](n *Node, pid *actor.PID, msg any, timeout time.Duration) (T, error) {
	var zero T
	res, err := n.ask(pid, msg, timeout)
	if err != nil {
		return zero, err
	}
	t, ok := res.(T)
	if !ok {
		return zero, fmt.Errorf("internal error: %T was answered with %T", msg, res)
	}
	return t, nil
}

// ListServices lists this node's services.
func (n *Node) ListServices(timeout time.Duration) (*messages.ServiceList, error) {
	return askAs[*messages.ServiceList](n, n.registry, &messages.ListServicesRequest{}, timeout)
}

// StartService starts a service. With Wait set the answer comes when the
// run ends, so timeout bounds the whole run.
func (n *Node) StartService(req *messages.StartService, timeout time.Duration) (*messages.ServiceInfo, error) {
	return askAs[*messages.ServiceInfo](n, n.registry, req, timeout)
}

// StopService stops a service; the answer comes once it is down.
func (n *Node) StopService(req *messages.StopService, timeout time.Duration) (*messages.ServiceInfo, error) {
	return askAs[*messages.ServiceInfo](n, n.registry, req, timeout)
}

// InspectService describes one service.
func (n *Node) InspectService(req *messages.InspectService, timeout time.Duration) (*messages.ServiceInfo, error) {
	return askAs[*messages.ServiceInfo](n, n.registry, req, timeout)
}

// RemoveService stops a service and forgets it, keeping its data folder.
func (n *Node) RemoveService(req *messages.RemoveService, timeout time.Duration) (*messages.RemoveServiceResponse, error) {
	return askAs[*messages.RemoveServiceResponse](n, n.registry, req, timeout)
}

// Catalog lists the services this node publishes to its peers.
func (n *Node) Catalog(timeout time.Duration) (*messages.Catalog, error) {
	return askAs[*messages.Catalog](n, n.registry, &messages.CatalogRequest{}, timeout)
}

// CatalogInspect describes one published service as peers see it.
func (n *Node) CatalogInspect(req *messages.CatalogInspect, timeout time.Duration) (*messages.CatalogEntry, error) {
	return askAs[*messages.CatalogEntry](n, n.registry, req, timeout)
}

// RuntimeCapability asks one runtime provider what it can do on this
// machine.
func (n *Node) RuntimeCapability(runtime string, timeout time.Duration) (*messages.RuntimeCapability, error) {
	pid, ok := n.runtimes[runtime]
	if !ok {
		return nil, errorf(NotFound, "no %s runtime on this node", runtime)
	}
	return askAs[*messages.RuntimeCapability](n, pid, &messages.RuntimesRequest{}, timeout)
}

// AddDevice adds a device to the address book, or addresses to one there.
func (n *Node) AddDevice(req *messages.DeviceAdd, timeout time.Duration) (*messages.Device, error) {
	return askAs[*messages.Device](n, n.devices, req, timeout)
}

// RemoveDevice takes a device out of the address book.
func (n *Node) RemoveDevice(req *messages.DeviceRemove, timeout time.Duration) (*messages.Device, error) {
	return askAs[*messages.Device](n, n.devices, req, timeout)
}

// RenameDevice gives a device another alias.
func (n *Node) RenameDevice(req *messages.DeviceRename, timeout time.Duration) (*messages.Device, error) {
	return askAs[*messages.Device](n, n.devices, req, timeout)
}

// TrustDevice gives a device a role.
func (n *Node) TrustDevice(req *messages.DeviceTrust, timeout time.Duration) (*messages.Device, error) {
	return askAs[*messages.Device](n, n.devices, req, timeout)
}

// UntrustDevice takes a device's role away.
func (n *Node) UntrustDevice(req *messages.DeviceUntrust, timeout time.Duration) (*messages.Device, error) {
	return askAs[*messages.Device](n, n.devices, req, timeout)
}

// ResolveDevice finds the device an alias or peer ID names ("" the current
// peer).
func (n *Node) ResolveDevice(req *messages.DeviceResolve, timeout time.Duration) (*messages.Device, error) {
	return askAs[*messages.Device](n, n.devices, req, timeout)
}

// UsePeer makes a device the default target of peer commands.
func (n *Node) UsePeer(req *messages.PeerUse, timeout time.Duration) (*messages.Device, error) {
	return askAs[*messages.Device](n, n.devices, req, timeout)
}

// CurrentPeer is the default target of peer commands.
func (n *Node) CurrentPeer(timeout time.Duration) (*messages.Device, error) {
	return askAs[*messages.Device](n, n.devices, &messages.PeerCurrent{}, timeout)
}

// ClearPeer unsets the default target of peer commands.
func (n *Node) ClearPeer(timeout time.Duration) (*messages.Device, error) {
	return askAs[*messages.Device](n, n.devices, &messages.PeerClear{}, timeout)
}

// ListDevices lists the address book.
func (n *Node) ListDevices(timeout time.Duration) (*messages.DeviceList, error) {
	return askAs[*messages.DeviceList](n, n.devices, &messages.DeviceListRequest{}, timeout)
}

// MdnsPeers lists the peers mDNS saw on the LAN.
func (n *Node) MdnsPeers(timeout time.Duration) (*messages.MdnsPeers, error) {
	return askAs[*messages.MdnsPeers](n, n.devices, &messages.MdnsRequest{}, timeout)
}

// AttachAccess makes a local entry for a service a peer publishes.
func (n *Node) AttachAccess(req *AttachAccess, timeout time.Duration) (*messages.AccessEntry, error) {
	return askAs[*messages.AccessEntry](n, n.access, req, timeout)
}

// ListAccess lists the access entries.
func (n *Node) ListAccess(req *messages.AccessListRequest, timeout time.Duration) (*messages.AccessEntries, error) {
	return askAs[*messages.AccessEntries](n, n.access, req, timeout)
}

// DetachAccess removes an access entry and closes its local ports.
func (n *Node) DetachAccess(req *messages.AccessDetach, timeout time.Duration) (*messages.AccessEntry, error) {
	return askAs[*messages.AccessEntry](n, n.access, req, timeout)
}
