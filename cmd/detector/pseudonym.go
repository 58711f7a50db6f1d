package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/exfilguard/exfilguard/pkg/alerts"
)

// runPseudonym prints the pseudonym alerts show for a record or customer
// id under the configured key, so that an analyst who suspects a given
// customer can check whether an alert is about them (or among its
// samples) without the detector ever showing ids in clear.
func runPseudonym(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pseudonym", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyFile := fs.String("pseudonym-key-file", "", "file holding the pseudonym key (or set "+pseudonymKeyEnv+")")
	record := fs.String("record", "", "a customer record id, as in the events' record_ids")
	customer := fs.String("customer", "", "a customer account id, as in the events' principal")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || (*record == "") == (*customer == "") {
		if err == nil {
			fmt.Fprintln(stderr, "usage: detector pseudonym [--pseudonym-key-file F] --record ID | --customer ID")
		}
		return exitUsage
	}
	key, err := pseudonymKey(*keyFile)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	if len(key) == 0 {
		fmt.Fprintf(stderr, "no pseudonym key (--pseudonym-key-file or %s): without one, alerts redact ids entirely\n", pseudonymKeyEnv)
		return exitUsage
	}
	p := alerts.NewPseudonymizer(key)
	if *record != "" {
		fmt.Fprintln(stdout, p.RecordID(*record))
	} else {
		fmt.Fprintln(stdout, p.Name(*customer))
	}
	return exitOK
}
