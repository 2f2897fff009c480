package main

import (
	"fmt"
	"strings"

	"github.com/tcpstate/tcpstate/osfp"
	"github.com/tcpstate/tcpstate/tracker"
)

// osSetting reads --os into o.osPolicy and returns the profile for endpoints whose OS stays
// unknown: Linux, or the one family given alone (--os windows: every endpoint Windows). The
// profile's name is what JSON's os_profile says: the family, or the --os text for auto/rules.
func osSetting(o *options) (tracker.Profile, error) {
	pol, err := osfp.ParsePolicy(o.osName)
	if err != nil {
		return tracker.Profile{}, fmt.Errorf("%v (e.g. --os auto, --os windows, --os 192.0.2.0/24=windows,server=linux)", err)
	}
	o.osPolicy = pol
	name := strings.ToLower(strings.TrimSpace(o.osName))
	if f, err := osfp.ParseFamily(name); err == nil {
		return tracker.LookupProfile(f.String())
	}
	prof, err := tracker.LookupProfile("linux")
	if name == "" {
		name = "auto"
	}
	prof.Name = name
	return prof, err
}
