package buildah

import (
	"errors"

	nettypes "go.podman.io/common/libnetwork/types"
)

// errNoNetworkBackend is what any use of a container network returns:
// RUN always joins the host's network namespace, so kimia-bud needs no
// netavark or CNI (Debian's netavark is too old for Buildah 1.45).
var errNoNetworkBackend = errors.New("kimia-bud runs RUN steps in the host network; container networks are not available")

// hostNetwork stands in for the network backend Buildah would otherwise
// look for when it creates a build container.
type hostNetwork struct{}

var _ nettypes.ContainerNetwork = hostNetwork{}

func (hostNetwork) NetworkCreate(nettypes.Network, *nettypes.NetworkCreateOptions) (nettypes.Network, error) {
	return nettypes.Network{}, errNoNetworkBackend
}
func (hostNetwork) NetworkUpdate(string, nettypes.NetworkUpdateOptions) error {
	return errNoNetworkBackend
}
func (hostNetwork) NetworkRemove(string) error { return errNoNetworkBackend }
func (hostNetwork) NetworkList(...nettypes.FilterFunc) ([]nettypes.Network, error) {
	return nil, nil
}
func (hostNetwork) NetworkInspect(string) (nettypes.Network, error) {
	return nettypes.Network{}, errNoNetworkBackend
}
func (hostNetwork) Setup(string, nettypes.SetupOptions) (map[string]nettypes.StatusBlock, error) {
	return nil, errNoNetworkBackend
}
func (hostNetwork) Teardown(string, nettypes.TeardownOptions) error { return nil }
func (hostNetwork) RunInRootlessNetns(func() error) error           { return errNoNetworkBackend }
func (hostNetwork) RootlessNetnsInfo() (*nettypes.RootlessNetnsInfo, error) {
	return nil, errNoNetworkBackend
}
func (hostNetwork) PestoSocketPath() string           { return "" }
func (hostNetwork) Drivers() []string                 { return nil }
func (hostNetwork) DefaultNetworkName() string        { return "host" }
func (hostNetwork) NetworkInfo() nettypes.NetworkInfo { return nettypes.NetworkInfo{Backend: "none"} }
