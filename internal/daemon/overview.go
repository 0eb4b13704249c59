package daemon

import (
	"context"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/internal/servicecache"
	"github.com/fungi-go/fungi/messages"
)

// deviceAnswerTimeout bounds each device's part of the overview, dial
// included: the devices are asked at once, so the overview takes as long
// as the slowest, at most this.
const deviceAnswerTimeout = 5 * time.Second

// deviceOverview is what the overview of all devices' services keeps:
// the cache of their last answers, and where to say it could not be saved.
type deviceOverview struct {
	cache  *servicecache.Cache
	logger *slog.Logger
}

// openDeviceOverview opens the cache of devices' service lists in the
// home; a file that does not load is logged and replaced.
func openDeviceOverview(h *home.Home, logger *slog.Logger) *deviceOverview {
	c, err := servicecache.Open(filepath.Join(h.CacheDir("device-services"), "devices.json"))
	if err != nil {
		logger.Warn("device service cache", "err", err)
	}
	return &deviceOverview{cache: c, logger: logger}
}

// AllDeviceServices is every device's services: this node's, then each
// device's of the address book, asked at once. A device with a connection
// answers live (with refresh, every device is dialed); one that does not
// answer shows what it answered last, with its age.
func (s *apiServer) AllDeviceServices(ctx context.Context, req *messages.DeviceServicesRequest) (*messages.DeviceServicesList, error) {
	own, err := s.node.ListServices(quickTimeout)
	if err != nil {
		return nil, apiError(err)
	}
	list, err := s.node.ListDevices(quickTimeout)
	if err != nil {
		return nil, apiError(err)
	}
	devices := list.Devices
	access := s.accessByPeer()
	self := &messages.DeviceServices{PeerId: s.net.Host.ID().String(), Self: true, Live: true, Services: own.Services}
	out := &messages.DeviceServicesList{Devices: make([]*messages.DeviceServices, len(devices))}
	var wg sync.WaitGroup
	for i, d := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out.Devices[i] = s.deviceServices(ctx, d, req.Refresh)
			out.Devices[i].Access = access[d.PeerId]
		}()
	}
	wg.Wait()
	keep := map[string]bool{}
	for _, d := range devices {
		keep[d.PeerId] = true
	}
	if err := s.overview.cache.Forget(keep); err != nil {
		s.overview.logger.Warn("device service cache not saved", "err", err)
	}
	sort.Slice(out.Devices, func(i, j int) bool {
		a, b := out.Devices[i], out.Devices[j]
		return a.Alias+"\x00"+a.PeerId < b.Alias+"\x00"+b.PeerId
	})
	out.Devices = append([]*messages.DeviceServices{self}, out.Devices...)
	return out, nil
}

// deviceServices asks one device for its services, live where it can,
// and falls back on the cache.
func (s *apiServer) deviceServices(ctx context.Context, d *messages.Device, refresh bool) *messages.DeviceServices {
	row := &messages.DeviceServices{PeerId: d.PeerId, Alias: d.Alias}
	var err error
	if !d.Connected && !refresh {
		err = status.Error(codes.Unavailable, "not connected now; --refresh dials it")
	} else {
		var list *messages.ServiceList
		if list, err = s.askDeviceServices(ctx, d); err == nil {
			row.Live, row.Services = true, list.Services
			if err := s.overview.cache.Put(d.PeerId, d.Alias, list); err != nil {
				s.overview.logger.Warn("device service cache not saved", "err", err)
			}
			return row
		}
	}
	row.Error = status.Convert(err).Message()
	if e, ok := s.overview.cache.Get(d.PeerId); ok {
		row.Services = e.Services.Services
		row.CachedAt = e.CachedAt.UTC().Format(time.RFC3339)
		row.AgeSeconds = int64(time.Since(e.CachedAt).Seconds())
	}
	return row
}

// askDeviceServices dials the device (bounded) and asks for its service
// list; a device that gives this node the access role only answers with
// its catalog, which is shown the same way.
func (s *apiServer) askDeviceServices(ctx context.Context, d *messages.Device) (*messages.ServiceList, error) {
	ctx, cancel := context.WithTimeout(ctx, deviceAnswerTimeout)
	defer cancel()
	id, err := peer.Decode(d.PeerId)
	if err != nil {
		return nil, err
	}
	if err := s.net.ConnectNow(ctx, id); err != nil {
		return nil, s.unreachable(d, err)
	}
	answer, err := s.remoteCall(ctx, d, id, &messages.Envelope{Body: &messages.Envelope_List{List: &messages.ListServicesRequest{}}})
	if status.Code(err) == codes.PermissionDenied {
		answer, err = s.remoteCall(ctx, d, id, &messages.Envelope{Body: &messages.Envelope_Catalog{Catalog: &messages.CatalogRequest{}}})
	}
	if err != nil {
		return nil, err
	}
	if list := answer.GetServices(); list != nil {
		return list, nil
	}
	if cat := answer.GetCatalogList(); cat != nil {
		return catalogAsServices(cat), nil
	}
	return nil, status.Errorf(codes.Unavailable, "%s answered something else than a service list", deviceName(d))
}

// catalogAsServices shows a catalog as services: what a device that gives
// this node the access role lets it see.
func catalogAsServices(cat *messages.Catalog) *messages.ServiceList {
	out := &messages.ServiceList{}
	for _, e := range cat.Services {
		info := &messages.ServiceInfo{Name: e.ServiceId, Runtime: e.Runtime, State: e.State,
			Expose: &messages.Expose{Enabled: true, ServiceId: e.ServiceId, DisplayName: e.DisplayName, Usage: e.Usage, Path: e.Path}}
		for _, p := range e.Ports {
			info.Ports = append(info.Ports, &messages.PortBinding{Name: p.Name, HostAddress: p.Target, Protocol: "tcp"})
		}
		out.Services = append(out.Services, info)
	}
	return out
}

// accessByPeer is this node's access entries by the peer they reach.
func (s *apiServer) accessByPeer() map[string][]*messages.AccessEntry {
	out := map[string][]*messages.AccessEntry{}
	all, err := s.node.ListAccess(&messages.AccessListRequest{}, quickTimeout)
	if err != nil {
		return out
	}
	for _, e := range all.Entries {
		out[e.PeerId] = append(out[e.PeerId], e)
	}
	return out
}
