package helmtest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// What each ci/ scenario must render beyond what every scenario must. A
// values file added to ci/ without an entry here fails, so that its
// purpose is written down.
type scenario struct {
	persistence    bool
	replicas       int32
	secretFiles    []string // mounted under the secrets directory
	sinks          int      // alerts.sinks in the rendered config
	networkPolicy  bool
	egressPorts    []int32 // at least these
	closedPorts    []int32 // and not these
	serviceMonitor bool
	prometheusRule bool
	goMemLimit     string
}

var scenarios = map[string]scenario{
	"default-values.yaml":         {persistence: true, replicas: 1, goMemLimit: "782MiB"},
	"persistence-off-values.yaml": {persistence: false, replicas: 1, goMemLimit: "782MiB"},
	"tls-scram-values.yaml": {persistence: true, replicas: 1, goMemLimit: "782MiB",
		secretFiles:   []string{"kafka/ca.crt", "kafka/sasl-password", "pseudonym/key"},
		networkPolicy: true, egressPorts: []int32{53, 9093}, closedPorts: []int32{443, 9092}},
	"mtls-large-values.yaml": {persistence: true, replicas: 3, goMemLimit: "1408MiB",
		secretFiles: []string{"kafka/ca.crt", "kafka/client.crt", "kafka/client.key"}},
	"sinks-values.yaml": {persistence: true, replicas: 1, goMemLimit: "782MiB", sinks: 9,
		secretFiles: []string{"sinks/siem/secret", "sinks/siem-private/secret", "sinks/siem-private/url",
			"sinks/slack/url", "sinks/pagerduty/secret"},
		networkPolicy: true, egressPorts: []int32{53, 9092, 443, 8443, 9093, 4318}},
	"monitoring-values.yaml": {persistence: true, replicas: 1, goMemLimit: "782MiB",
		serviceMonitor: true, prometheusRule: true},
}

const (
	dataDir    = "/var/lib/exfilguard"
	secretsDir = "/etc/exfilguard/secrets"
	// Secret names in ci/ values carry this marker; it must never reach
	// a ConfigMap.
	fakeSecretMarker = "fakesecret"
)

func TestScenarios(t *testing.T) {
	for _, file := range ciValuesFiles(t) {
		name := filepath.Base(file)
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			want, ok := scenarios[name]
			if !ok {
				t.Fatalf("%s has no entry in scenarios (chart_test.go): say what it must render", name)
			}
			r := render(t, []string{file})
			checkScenario(t, r, want)
		})
	}
}

func checkScenario(t *testing.T, r *rendered, want scenario) {
	sts := one(t, "StatefulSet", r.statefulSets)
	cm := one(t, "ConfigMap", r.configMaps)
	sa := one(t, "ServiceAccount", r.serviceAccounts)
	pdb := one(t, "PodDisruptionBudget", r.pdbs)
	pod := &sts.Spec.Template
	ctr := one(t, "container", pod.Spec.Containers)
	podLabels := labels.Set(pod.Labels)

	// Names and labels the API server would accept.
	for _, o := range r.all {
		if errs := validation.IsDNS1123Subdomain(o.name); len(errs) > 0 {
			t.Errorf("%s name %q: %v", o.gvk, o.name, errs)
		}
		for k, v := range o.meta.Labels {
			if errs := append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...); len(errs) > 0 {
				t.Errorf("%s %s label %s=%s: %v", o.gvk, o.name, k, v, errs)
			}
		}
	}

	if got := *sts.Spec.Replicas; got != want.replicas {
		t.Errorf("replicas %d, want %d", got, want.replicas)
	}
	if sel, err := metaSelector(sts.Spec.Selector.MatchLabels); err != nil || !sel.Matches(podLabels) {
		t.Errorf("StatefulSet selector %v does not match its pods' labels %v", sts.Spec.Selector.MatchLabels, pod.Labels)
	}

	checkRestricted(t, sts, sa)

	// State: a claim per replica, or an emptyDir when persistence is off.
	var dataVolume *corev1.Volume
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].Name == "data" {
			dataVolume = &pod.Spec.Volumes[i]
		}
	}
	if want.persistence {
		if len(sts.Spec.VolumeClaimTemplates) != 1 || sts.Spec.VolumeClaimTemplates[0].Name != "data" {
			t.Errorf("persistence on: want one volumeClaimTemplate named data, got %d", len(sts.Spec.VolumeClaimTemplates))
		}
		if dataVolume != nil {
			t.Errorf("persistence on: the pod must not also have a volume named data (%+v)", dataVolume.VolumeSource)
		}
	} else {
		if len(sts.Spec.VolumeClaimTemplates) != 0 {
			t.Errorf("persistence off: want no volumeClaimTemplates, got %d", len(sts.Spec.VolumeClaimTemplates))
		}
		if dataVolume == nil || dataVolume.EmptyDir == nil {
			t.Errorf("persistence off: want the data volume to be an emptyDir, got %+v", dataVolume)
		}
	}
	if mountPath(ctr, "data") != dataDir {
		t.Errorf("data volume mounted at %q, want %s", mountPath(ctr, "data"), dataDir)
	}

	// The config: accepted by the detector, its chart-owned keys set, and
	// every file it names mounted.
	text, ok := cm.Data["config.yml"]
	if !ok {
		t.Fatalf("ConfigMap %s has no config.yml: %v", cm.Name, keys(cm.Data))
	}
	checkConfig(t, text)
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
		t.Fatal(err)
	}
	if got := str(cfg, "state", "dir"); !strings.HasPrefix(got, dataDir+"/") {
		t.Errorf("state.dir %q is not on the data volume %s", got, dataDir)
	}
	port := one(t, "container port", ctr.Ports)
	if got, want := str(cfg, "http", "listen"), fmt.Sprintf(":%d", port.ContainerPort); got != want {
		t.Errorf("http.listen %q, want %q (the container port)", got, want)
	}
	if got := len(list(cfg, "alerts", "sinks")); got != want.sinks {
		t.Errorf("alerts.sinks: %d sinks, want %d", got, want.sinks)
	}
	for _, s := range list(cfg, "alerts", "sinks") {
		if m, _ := s.(map[string]any); m["type"] == "file" && !strings.HasPrefix(fmt.Sprint(m["path"]), dataDir+"/") {
			t.Errorf("file sink %v writes outside the data volume", m["name"])
		}
	}
	checkSecretFiles(t, cfg, pod, ctr, want.secretFiles)
	checkProbesAndShutdown(t, sts, cfg)

	// Secrets: never a value (the chart has none to give) nor a Secret's
	// name in a ConfigMap; the config only holds paths.
	for _, c := range r.configMaps {
		for k, v := range c.Data {
			if strings.Contains(v, fakeSecretMarker) {
				t.Errorf("ConfigMap %s key %s mentions a Secret (%q): secrets must only be mounted files", c.Name, k, fakeSecretMarker)
			}
		}
	}
	for _, v := range pod.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, src := range v.Projected.Sources {
			if src.Secret != nil && !strings.HasPrefix(src.Secret.Name, fakeSecretMarker) {
				t.Errorf("ci values: Secret name %q should start with %q so that leaks are recognisable", src.Secret.Name, fakeSecretMarker)
			}
		}
	}

	checkMemory(t, ctr, cfg, want.goMemLimit)
	checkServices(t, r, sts)

	if sel, err := metaSelector(pdb.Spec.Selector.MatchLabels); err != nil || !sel.Matches(podLabels) {
		t.Errorf("PodDisruptionBudget selector %v does not match the pods", pdb.Spec.Selector.MatchLabels)
	}
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MinAvailable != nil {
		t.Errorf("PodDisruptionBudget: want maxUnavailable (a single replica must stay drainable), got %+v", pdb.Spec)
	}

	if got := len(r.networkPolicies) == 1; got != want.networkPolicy {
		t.Errorf("NetworkPolicy rendered: %v, want %v", got, want.networkPolicy)
	}
	for _, np := range r.networkPolicies {
		if sel, err := metaSelector(np.Spec.PodSelector.MatchLabels); err != nil || !sel.Matches(podLabels) {
			t.Errorf("NetworkPolicy podSelector %v does not match the pods", np.Spec.PodSelector.MatchLabels)
		}
		var ports []int32
		for _, e := range np.Spec.Egress {
			for _, p := range e.Ports {
				ports = append(ports, p.Port.IntVal)
			}
		}
		for _, p := range want.egressPorts {
			if !slices.Contains(ports, p) {
				t.Errorf("NetworkPolicy egress: port %d not open (open: %v)", p, ports)
			}
		}
		for _, p := range want.closedPorts {
			if slices.Contains(ports, p) {
				t.Errorf("NetworkPolicy egress: port %d open, nothing needs it (open: %v)", p, ports)
			}
		}
		if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].Ports) != 1 || np.Spec.Ingress[0].Ports[0].Port.StrVal != port.Name {
			t.Errorf("NetworkPolicy ingress: want only the metrics port %q, got %+v", port.Name, np.Spec.Ingress)
		}
	}

	if got := len(r.serviceMonitors) == 1; got != want.serviceMonitor {
		t.Errorf("ServiceMonitor rendered: %v, want %v", got, want.serviceMonitor)
	}
	for _, sm := range r.serviceMonitors {
		checkServiceMonitor(t, r, sm)
	}
	if got := len(r.prometheusRules) == 1; got != want.prometheusRule {
		t.Errorf("PrometheusRule rendered: %v, want %v", got, want.prometheusRule)
	}
	for _, pr := range r.prometheusRules {
		checkPrometheusRule(t, pr, "exfilguard")
	}
}

// checkRestricted asserts the restricted Pod Security Standard and the
// chart's hardening: non-root, read-only root filesystem, no privilege
// escalation, every capability dropped, RuntimeDefault seccomp, no host
// namespaces or paths, and no ServiceAccount token.
func checkRestricted(t *testing.T, sts *appsv1.StatefulSet, sa *corev1.ServiceAccount) {
	t.Helper()
	spec := sts.Spec.Template.Spec
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Error("pod securityContext.runAsNonRoot must be true")
	}
	if psc == nil || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Error("pod securityContext.runAsUser must be set and not 0")
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("pod securityContext.seccompProfile must be RuntimeDefault")
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		t.Error("no host namespaces")
	}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			t.Errorf("volume %s is a hostPath", v.Name)
		}
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("pod automountServiceAccountToken must be false: the detector never calls the API")
	}
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Error("ServiceAccount automountServiceAccountToken must be false")
	}
	if spec.ServiceAccountName != sa.Name {
		t.Errorf("pods use ServiceAccount %q, the chart created %q", spec.ServiceAccountName, sa.Name)
	}
	for _, c := range append(spec.InitContainers, spec.Containers...) {
		sc := c.SecurityContext
		if sc == nil {
			t.Errorf("container %s has no securityContext", c.Name)
			continue
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("container %s: readOnlyRootFilesystem must be true", c.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("container %s: allowPrivilegeEscalation must be false", c.Name)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("container %s: privileged", c.Name)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			t.Errorf("container %s: capabilities must drop ALL and add none", c.Name)
		}
		if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Errorf("container %s: runAsNonRoot must be true", c.Name)
		}
		if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			t.Errorf("container %s runs as root", c.Name)
		}
		if sc.SeccompProfile != nil && sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("container %s: seccomp %s", c.Name, sc.SeccompProfile.Type)
		}
	}
}

// checkProbesAndShutdown asserts the probes on the detector's endpoints and
// a grace period that covers the final checkpoint: at least 45s, and at
// least state.shutdown_timeout + 10s of sink drain + 5s of trace flush.
func checkProbesAndShutdown(t *testing.T, sts *appsv1.StatefulSet, cfg map[string]any) {
	t.Helper()
	ctr := sts.Spec.Template.Spec.Containers[0]
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", ctr.LivenessProbe, "/healthz"}, {"readiness", ctr.ReadinessProbe, "/readyz"}, {"startup", ctr.StartupProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s probe: want an HTTP probe", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.StrVal != "http" {
			t.Errorf("%s probe: GET %s on %s, want %s on the http port", p.name, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path)
		}
	}
	shutdown := 20 * time.Second // the detector's default
	if s := str(cfg, "state", "shutdown_timeout"); s != "" {
		var err error
		if shutdown, err = parseDuration(s); err != nil {
			t.Fatal(err)
		}
	}
	need := max(45, int64((shutdown + 15*time.Second).Seconds()))
	grace := sts.Spec.Template.Spec.TerminationGracePeriodSeconds
	if grace == nil {
		t.Error("terminationGracePeriodSeconds not set")
	} else if *grace < need {
		t.Errorf("terminationGracePeriodSeconds %d: want at least %d (45, and state.shutdown_timeout %v + 10s sink drain + 5s traces)", *grace, need, shutdown)
	}
}

// checkConfig runs `detector config check` on a rendered config.
func checkConfig(t *testing.T, text string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(detectorPath(t), "config", "check", f).CombinedOutput()
	if err != nil {
		t.Errorf("detector config check rejects the rendered config: %v\n%s\n--- config:\n%s", err, out, text)
	}
}

// checkSecretFiles asserts that every file the config or the arguments
// name (kafka.tls.*_file, kafka.sasl.password_file, sinks' secret_file and
// url_file, --pseudonym-key-file) is a mounted Secret item, and that
// nothing else is mounted.
func checkSecretFiles(t *testing.T, cfg map[string]any, pod *corev1.PodTemplateSpec, ctr corev1.Container, want []string) {
	t.Helper()
	var named []string
	walk(cfg, func(key string, v any) {
		if strings.HasSuffix(key, "_file") {
			named = append(named, fmt.Sprint(v))
		}
	})
	for i, a := range ctr.Args {
		if a == "--pseudonym-key-file" && i+1 < len(ctr.Args) {
			named = append(named, ctr.Args[i+1])
		}
	}
	mounted := map[string]bool{}
	mount := mountPath(ctr, "secrets")
	for _, v := range pod.Spec.Volumes {
		if v.Name != "secrets" {
			continue
		}
		if v.Projected == nil {
			t.Fatalf("secrets volume is not projected: %+v", v.VolumeSource)
		}
		if mount != secretsDir {
			t.Errorf("secrets mounted at %q, want %s", mount, secretsDir)
		}
		for _, src := range v.Projected.Sources {
			if src.Secret == nil || len(src.Secret.Items) == 0 {
				t.Errorf("projected source %+v: want a Secret with explicit items", src)
				continue
			}
			for _, it := range src.Secret.Items {
				p := mount + "/" + it.Path
				if mounted[p] {
					t.Errorf("%s mounted twice", p)
				}
				mounted[p] = true
			}
		}
	}
	var wantPaths []string
	for _, w := range want {
		wantPaths = append(wantPaths, secretsDir+"/"+w)
	}
	sort.Strings(named)
	sort.Strings(wantPaths)
	if !reflect.DeepEqual(named, wantPaths) && !(len(named) == 0 && len(wantPaths) == 0) {
		t.Errorf("files named by the config and arguments:\n  %v\nwant\n  %v", named, wantPaths)
	}
	for _, p := range named {
		if !mounted[p] {
			t.Errorf("%s is named by the config but not mounted", p)
		}
		delete(mounted, p)
	}
	for p := range mounted {
		t.Errorf("%s is mounted but nothing reads it", p)
	}
}

// checkMemory asserts the documented memory sizing: the limit covers
// 320 MiB + 6 KiB per entity, and GOMEMLIMIT is the limit minus 128 MiB.
func checkMemory(t *testing.T, ctr corev1.Container, cfg map[string]any, want string) {
	t.Helper()
	limit, ok := ctr.Resources.Limits[corev1.ResourceMemory]
	if !ok {
		t.Fatal("no memory limit")
	}
	entities := int64(100000) // the detector's default
	if v, ok := get(cfg, "engine", "max_entities").(float64); ok {
		entities = int64(v)
	}
	const mib = 1 << 20
	if need := 320*mib + 6*1024*entities; limit.Value() < need {
		t.Errorf("memory limit %s < 320 MiB + 6 KiB x %d = %d MiB", limit.String(), entities, need/mib)
	}
	var got string
	for _, e := range ctr.Env {
		if e.Name == "GOMEMLIMIT" {
			got = e.Value
		}
	}
	if got != want {
		t.Errorf("GOMEMLIMIT %q, want %q", got, want)
	}
	if derived := fmt.Sprintf("%dMiB", limit.Value()/mib-128); got != derived {
		t.Errorf("GOMEMLIMIT %q is not the limit %s minus 128 MiB (%s)", got, limit.String(), derived)
	}
}

// checkServices asserts the metrics Service and the StatefulSet's headless
// Service, both selecting the pods and publishing them while not ready.
func checkServices(t *testing.T, r *rendered, sts *appsv1.StatefulSet) {
	t.Helper()
	if len(r.services) != 2 {
		t.Fatalf("want the metrics and the headless Service, got %d Services", len(r.services))
	}
	podLabels := labels.Set(sts.Spec.Template.Labels)
	var headless, metrics *corev1.Service
	for _, s := range r.services {
		if s.Spec.ClusterIP == corev1.ClusterIPNone {
			headless = s
		} else {
			metrics = s
		}
		if !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) || len(s.Spec.Selector) == 0 {
			t.Errorf("Service %s selector %v does not match the pods", s.Name, s.Spec.Selector)
		}
		if !s.Spec.PublishNotReadyAddresses {
			t.Errorf("Service %s: publishNotReadyAddresses must be true (a lagging replica is not ready, and its metrics matter then)", s.Name)
		}
		p := one(t, "Service port of "+s.Name, s.Spec.Ports)
		if p.TargetPort.StrVal != "http" {
			t.Errorf("Service %s targets %s, want the http port", s.Name, p.TargetPort.String())
		}
	}
	if headless == nil || metrics == nil {
		t.Fatal("want one headless and one ClusterIP Service")
	}
	if sts.Spec.ServiceName != headless.Name {
		t.Errorf("StatefulSet serviceName %q, want the headless Service %q", sts.Spec.ServiceName, headless.Name)
	}
}

// checkServiceMonitor asserts that the ServiceMonitor selects the metrics
// Service only, on a port it has, and sets job to what the rules expect.
func checkServiceMonitor(t *testing.T, r *rendered, sm *monitoringv1.ServiceMonitor) {
	t.Helper()
	sel, err := metaSelector(sm.Spec.Selector.MatchLabels)
	if err != nil {
		t.Fatal(err)
	}
	var selected []string
	for _, s := range r.services {
		if sel.Matches(labels.Set(s.Labels)) {
			selected = append(selected, s.Name)
			if sm.Spec.JobLabel == "" || s.Labels[sm.Spec.JobLabel] != "exfilguard" {
				t.Errorf("ServiceMonitor jobLabel %q: Service %s has %q there, want \"exfilguard\" (the rules select job=\"exfilguard\")",
					sm.Spec.JobLabel, s.Name, s.Labels[sm.Spec.JobLabel])
			}
			ep := one(t, "ServiceMonitor endpoint", sm.Spec.Endpoints)
			if ep.Port != s.Spec.Ports[0].Name || ep.Path != "/metrics" {
				t.Errorf("ServiceMonitor scrapes port %q path %q; the Service's port is %q", ep.Port, ep.Path, s.Spec.Ports[0].Name)
			}
		}
	}
	if len(selected) != 1 || !strings.HasSuffix(selected[0], "-metrics") {
		t.Errorf("ServiceMonitor selects %v, want the metrics Service only (the headless one would double every series)", selected)
	}
}

// checkPrometheusRule asserts that the PrometheusRule holds exactly the
// groups of deploy/prometheus/rules.yml, with job="exfilguard" replaced by
// job="<job>", and, when a promtool is at hand, that promtool accepts them.
func checkPrometheusRule(t *testing.T, pr *monitoringv1.PrometheusRule, job string) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repoRoot, "deploy/prometheus/rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	src = []byte(strings.ReplaceAll(string(src), `job="exfilguard"`, fmt.Sprintf("job=%q", job)))
	var want, got map[string]any
	if err := yaml.Unmarshal(src, &want); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(pr.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got["groups"], want["groups"]) {
		t.Errorf("PrometheusRule groups differ from deploy/prometheus/rules.yml:\n got %v\nwant %v", got["groups"], want["groups"])
	}
	if promtool := os.Getenv("EXFILGUARD_PROMTOOL"); promtool != "" {
		f := filepath.Join(t.TempDir(), "rules.yml")
		out, _ := yaml.Marshal(map[string]any{"groups": got["groups"]})
		if err := os.WriteFile(f, out, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(promtool, "check", "rules", f).CombinedOutput(); err != nil {
			t.Errorf("promtool check rules on the PrometheusRule's groups: %v\n%s", err, out)
		}
	}
}

// TestRulesCopyIsIdentical keeps the chart's copy of the alert rules equal
// to deploy/prometheus/rules.yml, which promtool checks and unit-tests.
func TestRulesCopyIsIdentical(t *testing.T) {
	a, err := os.ReadFile(filepath.Join(repoRoot, "deploy/prometheus/rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(chartDir, "files/rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) {
		t.Fatal("deploy/helm/exfilguard/files/rules.yml differs from deploy/prometheus/rules.yml: " +
			"cp deploy/prometheus/rules.yml deploy/helm/exfilguard/files/rules.yml")
	}
}

// TestJobNameRewritesRules: another scrape job name reaches both the
// metrics Service's job label and every selector of the rules.
func TestJobNameRewritesRules(t *testing.T) {
	r := render(t, []string{filepath.Join(chartDir, "ci/monitoring-values.yaml")}, "--set", "metrics.jobName=exfilguard-eu")
	pr := one(t, "PrometheusRule", r.prometheusRules)
	checkPrometheusRule(t, pr, "exfilguard-eu")
	b, _ := json.Marshal(pr.Spec)
	if strings.Contains(string(b), `job=\"exfilguard\"`) {
		t.Error(`a rule still selects job="exfilguard"`)
	}
	sm := one(t, "ServiceMonitor", r.serviceMonitors)
	for _, s := range r.services {
		if strings.HasSuffix(s.Name, "-metrics") && s.Labels[sm.Spec.JobLabel] != "exfilguard-eu" {
			t.Errorf("metrics Service %s=%q, want exfilguard-eu", sm.Spec.JobLabel, s.Labels[sm.Spec.JobLabel])
		}
	}
}

// TestConfigChecksumRollsPods: the pod template's checksum/config changes
// with the rendered config, and only with it.
func TestConfigChecksumRollsPods(t *testing.T) {
	checksum := func(args ...string) string {
		t.Helper()
		sts := one(t, "StatefulSet", render(t, nil, args...).statefulSets)
		c := sts.Spec.Template.Annotations["checksum/config"]
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(c) {
			t.Fatalf("checksum/config %q: want a sha256", c)
		}
		return c
	}
	base := checksum()
	if again := checksum(); again != base {
		t.Errorf("checksum not stable: %s then %s", base, again)
	}
	if other := checksum("--set", "podAnnotations.team=secops"); other != base {
		t.Error("checksum changed although the config did not")
	}
	for _, set := range []string{
		"config.engine.max_entities=50000",
		"kafka.brokers[0]=other-kafka:9092",
		"config.alerts.quiet_period=12h",
	} {
		if changed := checksum("--set", set); changed == base {
			t.Errorf("--set %s changed the config but not the checksum", set)
		}
	}
}

// TestTemplateRefusesUnsafeValues: what the schema cannot say, the
// templates check, with a message that says what to change.
func TestTemplateRefusesUnsafeValues(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"memory below the formula", []string{"--set", "resources.limits.memory=512Mi"},
			"320 MiB + 6 KiB x config.engine.max_entities (100000) = 906 MiB"},
		{"memory below the formula for more entities", []string{"--set", "config.engine.max_entities=200000"},
			"config.engine.max_entities (200000) = 1492 MiB"},
		{"grace shorter than the shutdown", []string{"--set", "terminationGracePeriodSeconds=30"},
			"terminationGracePeriodSeconds 30 is shorter than config.state.shutdown_timeout (20s) + 15s"},
		{"grace shorter than a longer shutdown", []string{"--set", "config.state.shutdown_timeout=1m"},
			"set it to at least 75"},
		{"unparseable memory", []string{"--set", "resources.limits.memory=lots"},
			`resources.limits.memory "lots"`},
		{"SASL without its Secret", []string{"--set", "kafka.sasl.mechanism=SCRAM-SHA-512", "--set", "kafka.sasl.username=u"},
			"kafka.sasl.password.existingSecret must name the Secret"},
		{"TLS files with TLS off", []string{"--set", "kafka.tls.ca.existingSecret=ca"},
			"kafka.tls.enabled is false"},
		{"Slack URL inline", []string{"--set", "sinks[0].name=s", "--set", "sinks[0].type=slack", "--set", "sinks[0].url=https://hooks.slack.com/x"},
			"a Slack webhook URL is a secret: set urlFrom"},
		{"webhook URL twice", []string{"--set", "sinks[0].name=w", "--set", "sinks[0].type=webhook", "--set", "sinks[0].url=https://x.example/",
			"--set", "sinks[0].urlFrom.existingSecret=u", "--set", "sinks[0].urlFrom.key=url",
			"--set", "sinks[0].secretFrom.existingSecret=s", "--set", "sinks[0].secretFrom.key=k"},
			"set url or urlFrom, not both"},
		{"Slack without its URL", []string{"--set", "sinks[0].name=s", "--set", "sinks[0].type=slack"},
			"a Slack webhook URL is a secret"},
		{"webhook without signing secret", []string{"--set", "sinks[0].name=w", "--set", "sinks[0].type=webhook", "--set", "sinks[0].url=https://x.example/"},
			"a webhook sink needs secretFrom"},
		{"file sink on the read-only root", []string{"--set", "sinks[0].name=f", "--set", "sinks[0].type=file", "--set", "sinks[0].path=/tmp/alerts.jsonl"},
			"is not under /var/lib/exfilguard"},
		{"two sinks, one name", []string{"--set", "sinks[0].name=a", "--set", "sinks[0].type=stdout", "--set", "sinks[1].name=a", "--set", "sinks[1].type=stdout"},
			"the name is used by another sink"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, err := helmTemplate(t, nil, c.args...)
			if err == nil {
				t.Fatalf("helm template %v succeeded; want it refused with %q", c.args, c.want)
			}
			if !strings.Contains(stderr, c.want) {
				t.Errorf("helm template %v:\n%s\nwant the message to contain %q", c.args, stderr, c.want)
			}
		})
	}
}

// TestMemoryDerivation: GOMEMLIMIT follows the limit in any unit.
func TestMemoryDerivation(t *testing.T) {
	for limit, want := range map[string]string{"910Mi": "782MiB", "1Gi": "896MiB", "1.5Gi": "1408MiB", "2G": "1779MiB", "1073741824": "896MiB"} {
		sts := one(t, "StatefulSet", render(t, nil, "--set-string", "resources.limits.memory="+limit).statefulSets)
		var got string
		for _, e := range sts.Spec.Template.Spec.Containers[0].Env {
			if e.Name == "GOMEMLIMIT" {
				got = e.Value
			}
		}
		if got != want {
			t.Errorf("limit %s: GOMEMLIMIT %q, want %q", limit, got, want)
		}
	}
	sts := one(t, "StatefulSet", render(t, nil, "--set", "goMemLimit=700MiB").statefulSets)
	if e := sts.Spec.Template.Spec.Containers[0].Env; len(e) != 1 || e[0].Value != "700MiB" {
		t.Errorf("goMemLimit=700MiB: env %v", e)
	}
}

// --- helpers

func metaSelector(m map[string]string) (labels.Selector, error) {
	if len(m) == 0 {
		return nil, fmt.Errorf("empty selector")
	}
	return labels.SelectorFromSet(m), nil
}

func mountPath(c corev1.Container, volume string) string {
	for _, m := range c.VolumeMounts {
		if m.Name == volume {
			return m.MountPath
		}
	}
	return ""
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func get(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[p]
	}
	return v
}

func str(m map[string]any, path ...string) string {
	s, _ := get(m, path...).(string)
	return s
}

func list(m map[string]any, path ...string) []any {
	l, _ := get(m, path...).([]any)
	return l
}

// walk calls f for every key of every map in v, depth first.
func walk(v any, f func(key string, v any)) {
	switch x := v.(type) {
	case map[string]any:
		for _, k := range keys(x) {
			f(k, x[k])
			walk(x[k], f)
		}
	case []any:
		for _, e := range x {
			walk(e, f)
		}
	}
}

// parseDuration reads the detector's duration syntax (1d12h, 90s, 500ms).
func parseDuration(s string) (time.Duration, error) {
	units := map[string]time.Duration{"ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour}
	var total time.Duration
	parts := regexp.MustCompile(`([0-9]+)(ms|s|m|h|d|w)`).FindAllStringSubmatch(s, -1)
	if len(parts) == 0 || strings.Join(flatten(parts), "") != s {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	for _, p := range parts {
		n, _ := strconv.Atoi(p[1])
		total += time.Duration(n) * units[p[2]]
	}
	return total, nil
}

func flatten(parts [][]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p[0])
	}
	return out
}
