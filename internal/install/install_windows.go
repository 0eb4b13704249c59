//go:build windows

package install

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"
)

// Install registers the fungi Windows service (needs an administrator) and
// starts it.
func Install(s Spec) (Result, error) {
	res := Result{Path: Name}
	w, err := WindowsServiceFor(s)
	if err != nil {
		return res, err
	}
	if s.Dir != "" {
		return res, errors.New("--unit-dir has no meaning on Windows: the service control manager keeps services")
	}
	m, err := mgr.Connect()
	if err != nil {
		return res, fmt.Errorf("connect to the service control manager: %w (run the command as an administrator)", err)
	}
	defer m.Disconnect()
	cfg := mgr.Config{DisplayName: w.DisplayName, Description: w.Description, StartType: mgr.StartAutomatic, DelayedAutoStart: true}
	if s.User != "" {
		cfg.ServiceStartName = s.User
	}
	service, err := m.CreateService(w.Name, w.Exe, cfg, w.Args...)
	if err != nil {
		return res, fmt.Errorf("create the service %s: %w", w.Name, err)
	}
	defer service.Close()
	service.SetRecoveryActions([]mgr.RecoveryAction{{Type: mgr.ServiceRestart, Delay: 5 * time.Second}}, 24*60*60)
	if err := service.Start(); err != nil {
		return res, fmt.Errorf("start the service %s: %w", w.Name, err)
	}
	res.Activated = true
	return res, nil
}

// Uninstall stops and deletes the service.
func Uninstall(s Spec) (Result, error) {
	res := Result{Path: Name}
	m, err := mgr.Connect()
	if err != nil {
		return res, fmt.Errorf("connect to the service control manager: %w (run the command as an administrator)", err)
	}
	defer m.Disconnect()
	service, err := m.OpenService(Name)
	if err != nil {
		return res, fmt.Errorf("no %s service: %w", Name, err)
	}
	defer service.Close()
	service.Control(svc.Stop)
	if err := service.Delete(); err != nil {
		return res, err
	}
	res.Activated = true
	return res, nil
}

// StatusOf asks the service control manager about the service.
func StatusOf(s Spec) (Status, error) {
	st := Status{Path: Name}
	m, err := mgr.Connect()
	if err != nil {
		st.Note = "cannot ask the service control manager: " + err.Error()
		return st, nil
	}
	defer m.Disconnect()
	service, err := m.OpenService(Name)
	if err != nil {
		if errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST) {
			return st, nil
		}
		st.Note = err.Error()
		return st, nil
	}
	defer service.Close()
	st.Installed = true
	q, err := service.Query()
	if err != nil {
		st.Note = err.Error()
		return st, nil
	}
	st.State = strings.ToLower(stateName(q.State))
	return st, nil
}

func stateName(s svc.State) string {
	switch s {
	case svc.Stopped:
		return "stopped"
	case svc.StartPending:
		return "starting"
	case svc.StopPending:
		return "stopping"
	case svc.Running:
		return "running"
	}
	return fmt.Sprintf("state %d", s)
}
