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
	res := Result{Path: s.Name()}
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
	res := Result{Path: s.Name()}
	m, err := mgr.Connect()
	if err != nil {
		return res, fmt.Errorf("connect to the service control manager: %w (run the command as an administrator)", err)
	}
	defer m.Disconnect()
	service, err := m.OpenService(s.Name())
	if err != nil {
		return res, fmt.Errorf("no %s service: %w", s.Name(), err)
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
	st := Status{Path: s.Name()}
	m, err := mgr.Connect()
	if err != nil {
		st.Note = "cannot ask the service control manager: " + err.Error()
		return st, nil
	}
	defer m.Disconnect()
	service, err := m.OpenService(s.Name())
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

// controlTimeout bounds how long a stop waits for the service to end.
const controlTimeout = 30 * time.Second

// Control asks the service control manager to stop, start or restart the
// service of s, waiting for a stop to finish.
func Control(s Spec, action string) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("connect to the service control manager: %w (run the command as an administrator)", err)
	}
	defer m.Disconnect()
	service, err := m.OpenService(s.Name())
	if err != nil {
		return fmt.Errorf("no %s service: %w", s.Name(), err)
	}
	defer service.Close()
	if action == "stop" || action == "restart" {
		if _, err := service.Control(svc.Stop); err != nil && !errors.Is(err, windows.ERROR_SERVICE_NOT_ACTIVE) {
			return fmt.Errorf("stop the service %s: %w", s.Name(), err)
		}
		deadline := time.Now().Add(controlTimeout)
		for {
			q, err := service.Query()
			if err != nil {
				return err
			}
			if q.State == svc.Stopped {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the service %s did not stop within %s", s.Name(), controlTimeout)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if action == "start" || action == "restart" {
		if err := service.Start(); err != nil {
			return fmt.Errorf("start the service %s: %w", s.Name(), err)
		}
	}
	return nil
}

// Managed says whether the service control manager runs s's service.
func Managed(s Spec) bool {
	st, err := StatusOf(s)
	return err == nil && st.Installed && (st.State == "running" || st.State == "starting")
}

// Startable says whether s's service is installed but stopped: restart
// starts it through the service control manager rather than beside it.
func Startable(s Spec) bool {
	st, err := StatusOf(s)
	return err == nil && st.Installed && st.State == "stopped"
}
