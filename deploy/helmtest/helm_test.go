package helmtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Paths relative to this directory (go test runs in the package's).
const (
	chartDir = "../helm/exfilguard"
	repoRoot = "../.."
)

var tmpDir string

func TestMain(m *testing.M) {
	var err error
	tmpDir, err = os.MkdirTemp("", "exfilguard-helmtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(tmpDir)
	os.Exit(code)
}

// helmPath returns the helm binary: EXFILGUARD_HELM, or the one
// .ci/helm.sh caches. Without one the test skips, or fails under
// EXFILGUARD_CI=1.
func helmPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("EXFILGUARD_HELM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("EXFILGUARD_HELM=%s: %v", p, err)
		}
		return p
	}
	p, err := cachedHelm()
	if err == nil {
		if _, err = os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("EXFILGUARD_CI") == "1" {
		t.Fatalf("no helm (%v): set EXFILGUARD_HELM=$(bash .ci/helm.sh)", err)
	}
	t.Skipf("no helm (%v): run `bash .ci/helm.sh` or set EXFILGUARD_HELM", err)
	return ""
}

// cachedHelm is the path .ci/helm.sh builds to, read from the script so
// that the two cannot disagree about the version.
func cachedHelm() (string, error) {
	script, err := os.ReadFile(filepath.Join(repoRoot, ".ci/helm.sh"))
	if err != nil {
		return "", err
	}
	get := func(name string) string {
		m := regexp.MustCompile(`(?m)^` + name + `=(\S+)$`).FindSubmatch(script)
		if m == nil {
			return ""
		}
		return string(m[1])
	}
	version, major, minor := get("version"), get("k8s_major"), get("k8s_minor")
	if version == "" || major == "" || minor == "" {
		return "", errors.New(".ci/helm.sh: version, k8s_major or k8s_minor not found")
	}
	cache := os.Getenv("EXFILGUARD_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		cache = filepath.Join(home, ".cache", "exfilguard")
	}
	return filepath.Join(cache, "bin", fmt.Sprintf("helm-%s-k8s%s.%s", version, major, minor)), nil
}

var (
	detectorOnce sync.Once
	detectorBin  string
	detectorErr  error
)

// detectorPath returns the detector binary: EXFILGUARD_DETECTOR, or one
// built once from the parent repository.
func detectorPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("EXFILGUARD_DETECTOR"); p != "" {
		return p
	}
	detectorOnce.Do(func() {
		bin := filepath.Join(tmpDir, "detector")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/detector")
		cmd.Dir = repoRoot
		out, err := cmd.CombinedOutput()
		if err != nil {
			detectorErr = fmt.Errorf("go build ./cmd/detector: %v\n%s", err, out)
			return
		}
		detectorBin = bin
	})
	if detectorErr != nil {
		t.Fatal(detectorErr)
	}
	return detectorBin
}

// helmTemplate runs `helm template` on the chart with the given values
// files and extra arguments (e.g. --set k=v).
func helmTemplate(t *testing.T, valuesFiles []string, args ...string) (stdout []byte, stderr string, err error) {
	t.Helper()
	cmdArgs := []string{"template", "exfilguard", chartDir, "--namespace", "exfilguard"}
	for _, f := range valuesFiles {
		cmdArgs = append(cmdArgs, "-f", f)
	}
	cmdArgs = append(cmdArgs, args...)
	cmd := exec.Command(helmPath(t), cmdArgs...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.Bytes(), e.String(), err
}

// render is helmTemplate that must succeed, decoded strictly.
func render(t *testing.T, valuesFiles []string, args ...string) *rendered {
	t.Helper()
	out, stderr, err := helmTemplate(t, valuesFiles, args...)
	if err != nil {
		t.Fatalf("helm template %v %v: %v\n%s", valuesFiles, args, err, stderr)
	}
	r, err := decode(out)
	if err != nil {
		t.Fatalf("helm template %v %v: %v", valuesFiles, args, err)
	}
	return r
}

// rendered holds every object of one render, decoded into its API type.
type rendered struct {
	raw             []byte
	all             []object
	statefulSets    []*appsv1.StatefulSet
	configMaps      []*corev1.ConfigMap
	services        []*corev1.Service
	serviceAccounts []*corev1.ServiceAccount
	pdbs            []*policyv1.PodDisruptionBudget
	networkPolicies []*networkingv1.NetworkPolicy
	serviceMonitors []*monitoringv1.ServiceMonitor
	prometheusRules []*monitoringv1.PrometheusRule
}

type object struct {
	gvk  string // apiVersion/kind
	name string
	meta *metav1.ObjectMeta
}

// decode splits helm's output into documents and decodes each strictly
// (unknown or duplicate fields are errors) into the Go type of its
// apiVersion and kind. A kind the chart is not expected to render, a
// Secret above all, is an error.
func decode(out []byte) (*rendered, error) {
	r := &rendered{raw: out}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("document without apiVersion/kind: %v\n%s", err, doc)
		}
		gvk := tm.APIVersion + "/" + tm.Kind
		var target any
		var meta *metav1.ObjectMeta
		switch gvk {
		case "apps/v1/StatefulSet":
			o := &appsv1.StatefulSet{}
			r.statefulSets, target, meta = append(r.statefulSets, o), o, &o.ObjectMeta
		case "v1/ConfigMap":
			o := &corev1.ConfigMap{}
			r.configMaps, target, meta = append(r.configMaps, o), o, &o.ObjectMeta
		case "v1/Service":
			o := &corev1.Service{}
			r.services, target, meta = append(r.services, o), o, &o.ObjectMeta
		case "v1/ServiceAccount":
			o := &corev1.ServiceAccount{}
			r.serviceAccounts, target, meta = append(r.serviceAccounts, o), o, &o.ObjectMeta
		case "policy/v1/PodDisruptionBudget":
			o := &policyv1.PodDisruptionBudget{}
			r.pdbs, target, meta = append(r.pdbs, o), o, &o.ObjectMeta
		case "networking.k8s.io/v1/NetworkPolicy":
			o := &networkingv1.NetworkPolicy{}
			r.networkPolicies, target, meta = append(r.networkPolicies, o), o, &o.ObjectMeta
		case "monitoring.coreos.com/v1/ServiceMonitor":
			o := &monitoringv1.ServiceMonitor{}
			r.serviceMonitors, target, meta = append(r.serviceMonitors, o), o, &o.ObjectMeta
		case "monitoring.coreos.com/v1/PrometheusRule":
			o := &monitoringv1.PrometheusRule{}
			r.prometheusRules, target, meta = append(r.prometheusRules, o), o, &o.ObjectMeta
		case "v1/Secret":
			return nil, errors.New("the chart rendered a Secret: it must only refer to existing Secrets (existingSecret)")
		default:
			return nil, fmt.Errorf("unexpected object %s", gvk)
		}
		if err := yaml.UnmarshalStrict(doc, target); err != nil {
			return nil, fmt.Errorf("%s: strict decoding: %v\n%s", gvk, err, doc)
		}
		r.all = append(r.all, object{gvk: gvk, name: meta.Name, meta: meta})
	}
	if len(r.all) == 0 {
		return nil, errors.New("no object rendered")
	}
	return r, nil
}

// stripComments drops whole-line YAML comments (helm's "# Source:" lines).
func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// ciValuesFiles lists the chart's ci/*-values.yaml scenarios.
func ciValuesFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no values files in %s/ci (%v)", chartDir, err)
	}
	sort.Strings(files)
	return files
}

// one returns the only element of a list, failing otherwise.
func one[T any](t *testing.T, what string, list []T) T {
	t.Helper()
	if len(list) != 1 {
		t.Fatalf("want exactly one %s, got %d", what, len(list))
	}
	return list[0]
}
