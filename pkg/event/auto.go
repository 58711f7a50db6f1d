package event

import (
	"bytes"
)

// auto recognises the format of each message, for a topic that carries
// several sources (one shipper for every database of a team) or for a
// first look at unknown logs. It costs a scan of the message's keys per
// message and a decoder (with its interners) per format: name the format
// where it is known.
//
// Recognition is by the keys only the format has, never by values, so a
// native event whose object is named "class_uid" is still native:
//
//	"class_uid": or "type_uid":                    ocsf
//	"databaseActivityEventList": or "dbUserName":  aws_das
//	"server_principal_name…": / "ServerPrincipalName": / "action_id…",
//	or "event_time": with "action_name": or "succeeded":  azure_sql
//	"audit_record":, or "class": with "connection_id":, "account": or "event":  mysql_audit
//	"error_severity":                              pgaudit_jsonlog
//	"principal":                                   native
//	2026-11-30 02:43:43.123 UTC,…                  pgaudit_csvlog
//	20241231 10:11:12,… (or ISO, no zone) or …server_audit…  mariadb_audit
//	anything else with "SEVERITY:  "               pgaudit_stderr (needs log_line_prefix)
type auto struct {
	decs [numAuto]Decoder
}

const (
	autoNative = iota
	autoOCSF
	autoDAS
	autoAzure
	autoMySQL
	autoPGJSON
	autoPGCSV
	autoMariaDB
	autoPGStderr
	numAuto
	autoNone = -1
)

var autoNames = [numAuto]string{"native", "ocsf", "aws_das", "azure_sql", "mysql_audit", "pgaudit_jsonlog", "pgaudit_csvlog", "mariadb_audit", "pgaudit_stderr"}

var (
	_ Decoder  = (*auto)(nil)
	_ Splitter = (*auto)(nil)
)

func init() {
	register("auto", "recognise the format of each message (costs a scan per message; name the format where it is known)",
		func(l Limits, o Options) (Decoder, error) { return newAuto(l, o) })
}

func newAuto(l Limits, o Options) (*auto, error) {
	a := &auto{}
	for i, name := range autoNames {
		if i == autoPGStderr && o.LogLinePrefix == "" {
			continue // stderr lines cannot be read without the prefix
		}
		d, err := NewDecoder(name, l, o)
		if err != nil {
			return nil, err
		}
		a.decs[i] = d
	}
	return a, nil
}

var errUnrecognized = &DecodeError{Reason: ReasonUnrecognized, Offset: -1}

func (a *auto) pick(msg []byte) Decoder {
	i := sniff(msg)
	if i == autoNone {
		return nil
	}
	return a.decs[i]
}

// Decode decodes msg with the decoder of its format.
func (a *auto) Decode(msg []byte, ev *Event) error {
	d := a.pick(msg)
	if d == nil {
		ev.Reset()
		return errUnrecognized
	}
	return d.Decode(msg, ev)
}

// Split splits msg as its format does; each record is recognised again
// by Decode (a DAS event, an Azure record, an array element carry their
// format's keys).
func (a *auto) Split(dst [][]byte, msg []byte) ([][]byte, error) {
	switch d := a.pick(msg).(type) {
	case nil:
		return dst, errUnrecognized
	case Splitter:
		return d.Split(dst, msg)
	}
	return append(dst, msg), nil
}

// Sniff returns the name of the format msg is in, as auto recognises it,
// or "" when it is in none; replay uses it to frame a file.
func Sniff(msg []byte) string {
	if i := sniff(msg); i != autoNone {
		return autoNames[i]
	}
	return ""
}

// sniff returns the format of msg, or autoNone.
func sniff(msg []byte) int {
	b := bytes.TrimLeft(msg, " \t\r\n")
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	if len(b) == 0 {
		return autoNone
	}
	if b[0] == '{' || b[0] == '[' {
		k := keysOf(b)
		switch {
		case k&(kClassUID|kTypeUID) != 0:
			return autoOCSF
		case k&(kDASList|kDBUserName|kDASEvents) != 0:
			return autoDAS
		case k&(kServerPrincipal|kActionID) != 0 || k&kEventTime != 0 && k&(kActionName|kSucceeded) != 0:
			return autoAzure
		case k&kAuditRecord != 0 || k&kClass != 0 && k&(kConnectionID|kAccount|kEvent) != 0:
			return autoMySQL
		case k&kErrorSeverity != 0:
			return autoPGJSON
		case k&kPrincipal != 0:
			return autoNative
		}
		return autoNone
	}
	switch {
	case csvlogStart(b):
		return autoPGCSV
	case mariadbStart(b):
		return autoMariaDB
	case bytes.Contains(b, []byte(":  ")):
		return autoPGStderr
	}
	return autoNone
}

// Keys that tell formats apart (see sniff).
const (
	kClassUID = 1 << iota
	kTypeUID
	kDASList
	kDBUserName
	kDASEvents
	kServerPrincipal
	kActionID
	kEventTime
	kActionName
	kSucceeded
	kAuditRecord
	kClass
	kConnectionID
	kAccount
	kEvent
	kErrorSeverity
	kPrincipal
)

var sniffKeys = map[string]uint32{
	"class_uid": kClassUID, "type_uid": kTypeUID,
	"databaseActivityEventList": kDASList, "dbUserName": kDBUserName, "databaseActivityEvents": kDASEvents,
	"server_principal_name": kServerPrincipal, "server_principal_name_s": kServerPrincipal, "ServerPrincipalName": kServerPrincipal,
	"action_id": kActionID, "action_id_s": kActionID, "event_time": kEventTime, "action_name": kActionName, "succeeded": kSucceeded,
	"audit_record": kAuditRecord, "class": kClass, "connection_id": kConnectionID, "account": kAccount, "event": kEvent,
	"error_severity": kErrorSeverity, "principal": kPrincipal,
}

// keysOf returns the sniffKeys that occur in b as keys (a string followed
// by a colon), in one pass: a string value is never followed by a colon,
// so values do not count. Nesting is not tracked; the keys are distinctive
// enough at any depth.
func keysOf(b []byte) uint32 {
	var k uint32
	for i := 0; i < len(b); {
		q := bytes.IndexByte(b[i:], '"')
		if q < 0 {
			break
		}
		start := i + q + 1
		end := start
		for end < len(b) && b[end] != '"' {
			if b[end] == '\\' {
				end++
			}
			end++
		}
		if end >= len(b) {
			break
		}
		j := end + 1
		for j < len(b) && (b[j] == ' ' || b[j] == '\t' || b[j] == '\n' || b[j] == '\r') {
			j++
		}
		if j < len(b) && b[j] == ':' {
			k |= sniffKeys[string(b[start:end])]
		}
		i = end + 1
	}
	return k
}

// csvlogStart: "2026-11-30 02:43:43.123 UTC," (a time, a zone, a comma).
func csvlogStart(b []byte) bool {
	if len(b) < 21 || !digits(b[:4]) || b[4] != '-' || b[7] != '-' || b[10] != ' ' || b[13] != ':' || b[16] != ':' {
		return false
	}
	i := 19
	for i < len(b) && (b[i] == '.' || isDigit(b[i])) {
		i++
	}
	if i >= len(b) || b[i] != ' ' {
		return false
	}
	for i++; i < len(b) && b[i] != ',' && b[i] != ' ' && b[i] != '\n'; i++ {
	}
	return i < len(b) && b[i] == ','
}

// mariadbStart: "20241231 10:11:12," (the plugin's file), or a syslog line
// from the plugin.
func mariadbStart(b []byte) bool {
	if len(b) >= 18 && digits(b[:8]) && b[8] == ' ' && b[11] == ':' && b[14] == ':' && b[17] == ',' {
		return true
	}
	// server_audit_timestamp_format set to ISO: no zone, then a comma.
	if len(b) >= 20 && digits(b[:4]) && b[4] == '-' && b[7] == '-' && b[10] == ' ' && b[13] == ':' && b[16] == ':' && b[19] == ',' {
		return true
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	return bytes.Contains(line, []byte("server_audit")) || bytes.Contains(line, []byte("mysql-server_auditing"))
}

func digits(b []byte) bool {
	for _, c := range b {
		if !isDigit(c) {
			return false
		}
	}
	return true
}
