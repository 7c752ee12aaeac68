package dockerfile

import (
	"reflect"
	"testing"

	"github.com/rapidfort/kimia/engine"
)

func TestInspectDockerfile(t *testing.T) {
	tests := []struct {
		name   string
		df     string
		args   []engine.KeyValue
		images []string
		stages []string
		hasRun bool
	}{
		{
			name: "FROM images with ARG defaults, --build-arg overrides, stage references and scratch",
			df: `ARG REG=reg:5000
ARG TAG=1
FROM ${REG}/base:${TAG} AS build
RUN true
FROM scratch AS empty
FROM build
COPY --from=other.example/tools:2 /x /x
COPY --from=build /y /y
COPY --from=0 /z /z
RUN --mount=type=bind,from=mnt.example/img,target=/m true
`,
			args:   []engine.KeyValue{{Key: "TAG", Value: "2"}},
			images: []string{"reg:5000/base:2", "other.example/tools:2", "mnt.example/img"},
			stages: []string{"build", "empty", ""},
			hasRun: true,
		},
		{
			name:   "platform ARGs expand for the target platform",
			df:     "FROM --platform=$BUILDPLATFORM img-$TARGETARCH\nCOPY a b\n",
			images: []string{"img-arm64"},
			stages: []string{""},
		},
		{
			name: "a Dockerfile that does not parse gives nothing",
			df:   "FROM\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Inspect([]byte(tt.df), tt.args, engine.Platform{OS: "linux", Architecture: "arm64"})
			if !reflect.DeepEqual(got.Images, tt.images) {
				t.Errorf("images = %q, want %q", got.Images, tt.images)
			}
			if !reflect.DeepEqual(got.Stages, tt.stages) {
				t.Errorf("stages = %q, want %q", got.Stages, tt.stages)
			}
			if got.HasRun != tt.hasRun {
				t.Errorf("hasRun = %v", got.HasRun)
			}
		})
	}
}
