package buildah

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func bkTestInput(df string, args map[string]string, base *dockerspec.DockerOCIImage) bkInput {
	return bkInput{
		Dockerfile:    []byte(df),
		BuildArgs:     args,
		BuildPlatform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		BaseConfig: func(name string) (*dockerspec.DockerOCIImage, error) {
			c := bkClone(*base)
			return &c, nil
		},
	}
}

func diffIDs(n int) []digest.Digest {
	var out []digest.Digest
	for i := 0; i < n; i++ {
		out = append(out, digest.FromString(strings.Repeat("l", i+1)))
	}
	return out
}

func TestBuildKitConfigOfAScratchImage(t *testing.T) {
	in := bkTestInput("FROM scratch\nCOPY a.txt /a.txt\nENV A=1\nLABEL a=b\n", map[string]string{"SOURCE_DATE_EPOCH": "0"}, nil)
	img, err := buildkitImage(in)
	if err != nil {
		t.Fatal(err)
	}
	ids := diffIDs(1)
	got, err := img.config(ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	// What BuildKit v0.34.2's exporter writes for this Dockerfile: sorted
	// top-level keys, the frontend's config fields in struct order.
	want := `{"architecture":"amd64","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","A=1"],"WorkingDir":"/","Labels":{"a":"b"}},` +
		`"created":"1970-01-01T00:00:00Z","history":[` +
		`{"created":"1970-01-01T00:00:00Z","created_by":"COPY a.txt /a.txt # buildkit","comment":"buildkit.dockerfile.v0"},` +
		`{"created":"1970-01-01T00:00:00Z","created_by":"ENV A=1","comment":"buildkit.dockerfile.v0","empty_layer":true},` +
		`{"created":"1970-01-01T00:00:00Z","created_by":"LABEL a=b","comment":"buildkit.dockerfile.v0","empty_layer":true}],` +
		`"os":"linux","rootfs":{"type":"layers","diff_ids":["` + ids[0].String() + `"]}}`
	if string(got) != want {
		t.Errorf("config\n got %s\nwant %s", got, want)
	}
}

func TestBuildKitConfigRules(t *testing.T) {
	epoch := time.Unix(1700000000, 0).UTC()
	base := &dockerspec.DockerOCIImage{}
	base.OS, base.Architecture = "linux", "amd64"
	base.Config.Env = []string{"PATH=/usr/bin:/bin", "HOME=/root"}
	base.Config.Cmd = []string{"sh"}
	base.RootFS.DiffIDs = diffIDs(1)
	base.History = []ocispec.History{{CreatedBy: "base layer", Created: &epoch}}

	tests := []struct {
		name    string
		df      string
		args    map[string]string
		layers  int // layers the build made on top of the base's one
		check   func(t *testing.T, c dockerspec.DockerOCIImage)
		wantErr string
	}{
		{
			name:   "a shell-form CMD and ENTRYPOINT use the SHELL in effect, and CMD sets ArgsEscaped",
			df:     "FROM base\nSHELL [\"/bin/bash\",\"-c\"]\nENTRYPOINT exec app\nCMD serve\n",
			layers: 0,
			check: func(t *testing.T, c dockerspec.DockerOCIImage) {
				if strings.Join(c.Config.Entrypoint, "|") != "/bin/bash|-c|exec app" || strings.Join(c.Config.Cmd, "|") != "/bin/bash|-c|serve" {
					t.Errorf("entrypoint %q cmd %q", c.Config.Entrypoint, c.Config.Cmd)
				}
				if !c.Config.ArgsEscaped { //nolint:staticcheck // as BuildKit writes it
					t.Error("ArgsEscaped not set by CMD")
				}
			},
		},
		{
			name:   "ENTRYPOINT without a CMD in the stage clears the base's CMD",
			df:     "FROM base\nENTRYPOINT [\"app\"]\n",
			layers: 0,
			check: func(t *testing.T, c dockerspec.DockerOCIImage) {
				if c.Config.Cmd != nil {
					t.Errorf("cmd %q, want none", c.Config.Cmd)
				}
			},
		},
		{
			name:   "RUN shows the stage's build args with their values; ENV replaces a variable in place",
			df:     "FROM base\nARG A=1\nARG B\nENV PATH=/opt/bin:$PATH\nRUN echo $A\n",
			args:   map[string]string{"SOURCE_DATE_EPOCH": "1700000000"},
			layers: 1,
			check: func(t *testing.T, c dockerspec.DockerOCIImage) {
				last := c.History[len(c.History)-1]
				if last.CreatedBy != "RUN |2 A=1 B= /bin/sh -c echo $A # buildkit" || last.EmptyLayer {
					t.Errorf("last history entry %+v", last)
				}
				if strings.Join(c.Config.Env, "|") != "PATH=/opt/bin:/usr/bin:/bin|HOME=/root" {
					t.Errorf("env %q", c.Config.Env)
				}
				if c.History[0].CreatedBy != "base layer" || !c.History[0].Created.Equal(epoch) {
					t.Errorf("the base's history entry changed: %+v", c.History[0])
				}
			},
		},
		{
			name:   "a WORKDIR that Buildah makes no layer for is an empty entry",
			df:     "FROM base\nWORKDIR /app\nCOPY . .\n",
			layers: 1,
			check: func(t *testing.T, c dockerspec.DockerOCIImage) {
				h := c.History[1]
				if h.CreatedBy != "WORKDIR /app" || !h.EmptyLayer || c.Config.WorkingDir != "/app" {
					t.Errorf("workdir entry %+v, workdir %q", h, c.Config.WorkingDir)
				}
				if c.History[2].CreatedBy != "COPY . . # buildkit" {
					t.Errorf("copy entry %+v", c.History[2])
				}
			},
		},
		{
			name:    "layers that cannot be matched to the history are refused",
			df:      "FROM base\nCOPY a /a\nCOPY b /b\n",
			layers:  1,
			wantErr: "the build made 1",
		},
		{
			name:   "a stage built on another inherits its config and history; EXPOSE ranges expand",
			df:     "FROM base AS a\nUSER app\nEXPOSE 80 81-82/udp\nFROM a\nLABEL x=y\n",
			layers: 0,
			check: func(t *testing.T, c dockerspec.DockerOCIImage) {
				if c.Config.User != "app" || len(c.Config.ExposedPorts) != 3 || c.Config.Labels["x"] != "y" {
					t.Errorf("config %+v", c.Config)
				}
				var by []string
				for _, h := range c.History {
					by = append(by, h.CreatedBy)
				}
				if strings.Join(by, "|") != "base layer|USER app|EXPOSE [80/tcp 81/udp 82/udp]|LABEL x=y" {
					t.Errorf("history %q", by)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img, err := buildkitImage(bkTestInput(tc.df, tc.args, base))
			if err != nil {
				t.Fatal(err)
			}
			b, err := img.config(diffIDs(1+tc.layers), &epoch)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var c dockerspec.DockerOCIImage
			if err := json.Unmarshal(b, &c); err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}
