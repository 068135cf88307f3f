package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"andon/db"
	"andon/plant"
	"andon/views"
)

// DeviceStore is what the devices admin page needs from the database;
// *db.Store implements it.
type DeviceStore interface {
	CreateDevice(ctx context.Context, username, password, topicPrefix string) (db.Device, error)
	Devices(ctx context.Context) ([]db.Device, error)
	SetDeviceDisabled(ctx context.Context, id int64, disabled bool) error
	SetDevicePassword(ctx context.Context, id int64, password string) error
	DeleteDevice(ctx context.Context, id int64) error
}

// deviceRoutes registers /admin/devices: the MQTT devices' credentials.
// Every change is a POST answered with a redirect, except when a password
// was generated: that page shows it, once.
func (s *Server) deviceRoutes(e *echo.Echo) {
	s.handle(e, http.MethodGet, "/admin/devices", s.adminDevices, admin)
	s.handle(e, http.MethodPost, "/admin/devices", s.addDevice, admin)
	s.handle(e, http.MethodPost, "/admin/devices/:id/disabled", s.setDeviceDisabled, admin)
	s.handle(e, http.MethodPost, "/admin/devices/:id/password", s.setDevicePassword, admin)
	s.handle(e, http.MethodPost, "/admin/devices/:id/delete", s.deleteDevice, admin)
}

// devicesPage builds /admin/devices; saved and errMsg are the outcome of a change.
func (s *Server) devicesPage(c echo.Context, st DeviceStore, saved, errMsg string) (views.DevicesPage, error) {
	ds, err := st.Devices(c.Request().Context())
	if err != nil {
		return views.DevicesPage{}, fmt.Errorf("web: devices: %w", err)
	}
	v := views.DevicesPage{
		AdminPage: views.AdminPage{Page: s.page(c, "Devices", "", "admin"), Tab: "devices", Saved: saved},
		MQTTAddr:  s.cfg.MQTTAddr,
	}
	if errMsg != "" {
		v.Err = views.FormErr{Form: "devices", Msg: errMsg}
	}
	for _, d := range ds {
		seen := "never"
		if d.LastSeenMS > 0 {
			seen = views.FormatTime(d.LastSeenMS, s.loc)
		}
		v.Devices = append(v.Devices, views.DeviceRow{
			ID: d.ID, Username: d.Username, Prefix: d.TopicPrefix, Disabled: d.Disabled,
			Created: views.FormatTime(d.CreatedMS, s.loc), LastSeen: seen,
		})
	}
	return v, nil
}

func (s *Server) adminDevices(c echo.Context) error {
	st := s.store
	saved := ""
	if c.QueryParam("saved") == "1" {
		saved = "Saved. The broker applies changes within 5 minutes."
	}
	v, err := s.devicesPage(c, st, saved, "")
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, views.DevicesView(v))
}

// refuseDevice shows the page again with the store's reason (400).
func (s *Server) refuseDevice(c echo.Context, st DeviceStore, err error, keep func(*views.DevicesPage)) error {
	v, perr := s.devicesPage(c, st, "", userMessage(err))
	if perr != nil {
		return perr
	}
	if keep != nil {
		keep(&v)
	}
	return s.render(c, http.StatusBadRequest, views.DevicesView(v))
}

// showDevicePassword renders the page with a generated password, the only
// time it is shown; the response is not cached (render sets no-store).
func (s *Server) showDevicePassword(c echo.Context, st DeviceStore, d db.Device, password string) error {
	v, err := s.devicesPage(c, st, "Saved.", "")
	if err != nil {
		return err
	}
	v.Created = &views.CreatedDevice{Username: d.Username, Prefix: d.TopicPrefix, Password: password}
	return s.render(c, http.StatusOK, views.DevicesView(v))
}

// passwordOrGenerated is the form's password, or a generated one when the
// field was left empty (generated reports which).
func passwordOrGenerated(c echo.Context) (pw string, generated bool, err error) {
	if pw = c.FormValue("password"); pw != "" {
		return pw, false, nil
	}
	pw, err = db.GenerateDevicePassword()
	return pw, true, err
}

func (s *Server) addDevice(c echo.Context) error {
	st := s.store
	username, prefix := c.FormValue("username"), c.FormValue("prefix")
	keep := func(v *views.DevicesPage) { v.NewName, v.NewPrefix = username, prefix }
	pw, generated, err := passwordOrGenerated(c)
	if err != nil {
		return err
	}
	d, err := st.CreateDevice(c.Request().Context(), username, pw, prefix)
	if errors.Is(err, plant.ErrInvalid) {
		return s.refuseDevice(c, st, err, keep)
	}
	if err != nil {
		return fmt.Errorf("web: add device: %w", err)
	}
	s.audit(c, "device.create", d.Username, "prefix="+d.TopicPrefix)
	if generated {
		return s.showDevicePassword(c, st, d, pw)
	}
	return c.Redirect(http.StatusSeeOther, "/admin/devices?saved=1")
}

// targetDevice is the device named by the :id parameter.
func (s *Server) targetDevice(c echo.Context, st DeviceStore) (db.Device, error) {
	id, err := idParam(c, "device")
	if err != nil {
		return db.Device{}, err
	}
	ds, err := st.Devices(c.Request().Context())
	if err != nil {
		return db.Device{}, fmt.Errorf("web: devices: %w", err)
	}
	for _, d := range ds {
		if d.ID == id {
			return d, nil
		}
	}
	return db.Device{}, fmt.Errorf("web: device %d: %w", id, plant.ErrNotFound)
}

func (s *Server) setDeviceDisabled(c echo.Context) error {
	st := s.store
	d, err := s.targetDevice(c, st)
	if err != nil {
		return err
	}
	disabled, err := strconv.ParseBool(strings.TrimSpace(c.FormValue("disabled")))
	if err != nil {
		return s.refuseDevice(c, st, fmt.Errorf("disabled must be true or false: %w", plant.ErrInvalid), nil)
	}
	if err := st.SetDeviceDisabled(c.Request().Context(), d.ID, disabled); err != nil {
		return fmt.Errorf("web: disable device %d: %w", d.ID, err)
	}
	action := "device.enable"
	if disabled {
		action = "device.disable"
	}
	s.audit(c, action, d.Username, "")
	return c.Redirect(http.StatusSeeOther, "/admin/devices?saved=1")
}

func (s *Server) setDevicePassword(c echo.Context) error {
	st := s.store
	d, err := s.targetDevice(c, st)
	if err != nil {
		return err
	}
	pw, generated, err := passwordOrGenerated(c)
	if err != nil {
		return err
	}
	if err := st.SetDevicePassword(c.Request().Context(), d.ID, pw); err != nil {
		if errors.Is(err, plant.ErrInvalid) {
			return s.refuseDevice(c, st, err, nil)
		}
		return fmt.Errorf("web: device %d password: %w", d.ID, err)
	}
	s.audit(c, "device.password", d.Username, "")
	if generated {
		return s.showDevicePassword(c, st, d, pw)
	}
	return c.Redirect(http.StatusSeeOther, "/admin/devices?saved=1")
}

func (s *Server) deleteDevice(c echo.Context) error {
	st := s.store
	d, err := s.targetDevice(c, st)
	if err != nil {
		return err
	}
	if err := st.DeleteDevice(c.Request().Context(), d.ID); err != nil {
		return fmt.Errorf("web: delete device %d: %w", d.ID, err)
	}
	s.audit(c, "device.delete", d.Username, "prefix="+d.TopicPrefix)
	return c.Redirect(http.StatusSeeOther, "/admin/devices?saved=1")
}
