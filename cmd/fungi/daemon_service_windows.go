//go:build windows

package main

import (
	"context"

	"golang.org/x/sys/windows/svc"

	"github.com/fungi-go/fungi/internal/install"
)

// underServiceManager runs the daemon as the Windows service `fungi daemon
// install` made, when the service control manager started this process:
// it must answer the manager's requests, and Stop or Shutdown stops the
// node as SIGTERM does elsewhere. It reports false when started otherwise.
func underServiceManager(run func(context.Context) error) (bool, error) {
	if is, err := svc.IsWindowsService(); err != nil || !is {
		return false, nil
	}
	return true, svc.Run(install.Name, &scmHandler{run: run})
}

type scmHandler struct{ run func(context.Context) error }

func (h *scmHandler) Execute(_ []string, req <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.run(ctx) }()
	status <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
	for {
		select {
		case err := <-done:
			// A daemon that fails exits with a service-specific code, so
			// the recovery actions (restart after 5 s) apply.
			if err != nil {
				return true, 1
			}
			return false, 0
		case c := <-req:
			switch c.Cmd {
			case svc.Interrogate:
				status <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				status <- svc.Status{State: svc.StopPending}
				cancel()
				<-done
				return false, 0
			}
		}
	}
}
