package alerts

// OCSF renders a as an OCSF 1.x Detection Finding (class_uid 2004).
// PLACEHOLDER: being written; returns a minimal object until then.
func OCSF(a *Alert) any {
	return map[string]any{"class_uid": 2004, "finding_info": map[string]any{"uid": a.ID}}
}
