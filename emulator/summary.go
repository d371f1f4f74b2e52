package emulator

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// WriteSummary writes a table of the invocations in records and the shutdown: what a user
// of the non-interactive mode reads after a run.
func WriteSummary(w io.Writer, records []Record, shutdown ShutdownReport, failed bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\trequest id\tstatus\tinit\tduration\truntime\textensions after response\tbilled\tmax memory")
	for i, r := range records {
		status := r.Status
		if r.ErrorType != "" {
			status += " (" + r.ErrorType + ")"
		}
		if r.Attempt > 0 {
			status += fmt.Sprintf(", async attempt %d", r.Attempt)
		}
		init := "-"
		if r.Cold {
			init = ms(r.InitDuration)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d ms\t%d MB\n", i+1, r.RequestID, status, init,
			ms(r.Duration), ms(r.RuntimeDuration), ms(r.ExtensionOverhead), r.BilledDurationMs, r.MaxMemoryUsedMB)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing the summary: %w", err)
	}
	for _, r := range records {
		for _, x := range r.ExtensionStartup {
			fmt.Fprintf(w, "extension %s: %s from its start to its first event/next\n", x.Name, ms(x.Duration))
		}
	}
	if shutdown.Reason != "" {
		fmt.Fprintf(w, "shutdown (%s) took %s", shutdown.Reason, ms(shutdown.Duration))
		if len(shutdown.Killed) > 0 {
			fmt.Fprintf(w, "; killed at the deadline: %v", shutdown.Killed)
		}
		fmt.Fprintln(w)
	}
	if n := len(shutdown.Unfinished); n > 0 {
		fmt.Fprintf(w, "%d asynchronous invocations were still queued at shutdown: %v\n", n, shutdown.Unfinished)
	}
	result := "the environment ran without failures"
	if failed {
		result = "the environment FAILED (a failed init, a reset after a timeout or crash, or an extension killed at shutdown)"
	}
	_, err := fmt.Fprintln(w, result)
	return err
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
