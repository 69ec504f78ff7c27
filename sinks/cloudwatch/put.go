package cloudwatch

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/tailgate-dev/tailgate/collector"
)

// putter sends the requests of one destination in order and records each record's fate.
type putter struct {
	k             *Sink
	ctx           context.Context
	group, stream string
	bld           *builder
	index         func(member int) int // member -> position in the batch
	res           *outcome
	created       bool // the group/stream were (re)created in this Send: a second not-found is retried later
}

// put sends order[sp.lo:sp.hi] and reports whether the destination may go on with its next
// request (false: these records, and the later ones, are to be retried).
func (p *putter) put(sp span) bool {
	for {
		body := p.bld.encode(p.group, p.stream, sp)
		out, err := p.call(body)
		cls := classify(err)
		p.k.m.request(opPut, cls.result())
		switch cls {
		case classOK:
			p.accepted(sp, out)
			return true
		case classNotFound:
			if p.created {
				p.stop(sp, fmt.Errorf("log group %s stream %s: still not found after creating it: %w", p.group, p.stream, err), cls)
				return false
			}
			p.created = true
			if err := p.ensure(); err != nil {
				p.stop(sp, err, classify(err))
				return false
			}
			continue
		case classInvalid:
			if sp.hi-sp.lo == 1 {
				m := p.bld.order[sp.lo]
				p.k.m.rejected(reasonInvalid, 1)
				p.res.failed = append(p.res.failed, collector.RecordError{Index: p.index(m),
					Err: collector.WithReason(reasonInvalid, fmt.Errorf("log group %s stream %s: %w", p.group, p.stream, err))})
				p.k.warn.Warn("invalid:"+p.group, "event refused by CloudWatch Logs; dead-lettered",
					"group", p.group, "stream", p.stream, "err", err)
				return true
			}
			// Split in halves until the event at fault is alone; the others go through.
			mid := sp.lo + (sp.hi-sp.lo)/2
			if !p.put(span{sp.lo, mid}) {
				p.retryAll(span{mid, sp.hi})
				return false
			}
			return p.put(span{mid, sp.hi})
		default:
			if cls == classThrottled {
				p.k.m.throttles.Inc()
			}
			p.stop(sp, fmt.Errorf("log group %s stream %s: PutLogEvents: %w", p.group, p.stream, err), cls)
			return false
		}
	}
}

func (p *putter) call(body []byte) (*cloudwatchlogs.PutLogEventsOutput, error) {
	ctx, cancel := context.WithTimeout(p.ctx, p.k.s.requestTimeout)
	defer cancel()
	p.k.m.requestBytes.Add(float64(len(body)))
	return p.k.client.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{
		LogGroupName:  aws.String(p.group),
		LogStreamName: aws.String(p.stream),
		LogEvents:     noEvents,
	}, withBody(body))
}

// accepted records a 2xx answer: every event of sp is stored except those rejectedLogEventsInfo
// names (tooNewLogEventStartIndex inclusive; tooOldLogEventEndIndex and
// expiredLogEventEndIndex exclusive, indexes into the request's events).
func (p *putter) accepted(sp span, out *cloudwatchlogs.PutLogEventsOutput) {
	n := sp.hi - sp.lo
	tooOld, expired, tooNew := 0, 0, n
	if out != nil && out.RejectedLogEventsInfo != nil {
		ri := out.RejectedLogEventsInfo
		if ri.TooOldLogEventEndIndex != nil {
			tooOld = clamp(int(*ri.TooOldLogEventEndIndex), 0, n)
		}
		if ri.ExpiredLogEventEndIndex != nil {
			expired = clamp(int(*ri.ExpiredLogEventEndIndex), 0, n)
		}
		if ri.TooNewLogEventStartIndex != nil {
			tooNew = clamp(int(*ri.TooNewLogEventStartIndex), 0, n)
		}
	}
	stored, bytes := 0, 0
	for i := 0; i < n; i++ {
		m := p.bld.order[sp.lo+i]
		e := &p.bld.events[m]
		reason := ""
		switch {
		case i < expired:
			reason = reasonExpired
		case i < tooOld:
			reason = reasonTooOld
		case i >= tooNew:
			reason = reasonTooNew
		}
		if reason == "" {
			stored++
			bytes += e.size + EventOverhead
			if e.bad {
				p.k.m.invalidUTF8.Inc()
			}
			continue
		}
		p.k.m.rejected(reason, 1)
		p.res.failed = append(p.res.failed, collector.RecordError{Index: p.index(m),
			Err: collector.WithReason(reason, fmt.Errorf("log group %s stream %s: CloudWatch Logs rejected the event at index %d: it %s",
				p.group, p.stream, i, describe(reason)))})
	}
	p.k.m.events.Add(float64(stored))
	p.k.m.eventBytes.Add(float64(bytes))
}

// stop records that sp was not accepted because of err: its records are retried, slowly when
// an operator has to act.
func (p *putter) stop(sp span, err error, cls errClass) {
	p.retryAll(sp)
	if p.res.cause == nil {
		p.res.cause = err
	}
	if p.ctx.Err() != nil {
		return // stopping: the records stay in the buffer
	}
	if cls == classDenied || cls == classOther {
		p.res.after = max(p.res.after, p.k.deniedRetry)
		p.k.warn.Warn("refused:"+cls.result(), "CloudWatch Logs refused the request (permissions or credentials?); records kept and retried slowly",
			"group", p.group, "stream", p.stream, "retry_in", p.k.deniedRetry, "err", err)
		return
	}
	p.k.warn.Warn("retry:"+p.group+"\x00"+p.stream, "CloudWatch Logs request not accepted; retrying",
		"group", p.group, "stream", p.stream, "err", err)
}

func (p *putter) retryAll(sp span) {
	for i := sp.lo; i < sp.hi; i++ {
		p.res.retry = append(p.res.retry, collector.RecordError{Index: p.index(p.bld.order[i]), Err: errNotAccepted})
	}
}

var errNotAccepted = fmt.Errorf("not accepted yet")

// ensure creates the stream, and the group first when it is missing too. A resource that
// already exists is success: another sender (or agent) made it.
func (p *putter) ensure() error {
	err := p.createStream()
	if classify(err) == classNotFound {
		if err := p.createGroup(); err != nil {
			return err
		}
		err = p.createStream()
	}
	return err
}

func (p *putter) createStream() error {
	ctx, cancel := context.WithTimeout(p.ctx, p.k.s.requestTimeout)
	defer cancel()
	_, err := p.k.client.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{
		LogGroupName: aws.String(p.group), LogStreamName: aws.String(p.stream),
	})
	cls := classify(err)
	p.k.m.request(opCreateStream, cls.result())
	switch cls {
	case classOK:
		p.k.m.created("stream")
		p.k.log.Info("created log stream", "group", p.group, "stream", p.stream)
		return nil
	case classExists:
		return nil
	}
	return fmt.Errorf("log group %s: CreateLogStream %s: %w", p.group, p.stream, err)
}

func (p *putter) createGroup() error {
	ctx, cancel := context.WithTimeout(p.ctx, p.k.s.requestTimeout)
	defer cancel()
	in := &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(p.group)}
	if len(p.k.s.tags) > 0 {
		in.Tags = p.k.s.tags
	}
	_, err := p.k.client.CreateLogGroup(ctx, in)
	cls := classify(err)
	p.k.m.request(opCreateGroup, cls.result())
	switch cls {
	case classExists:
		return nil
	case classOK:
	default:
		return fmt.Errorf("CreateLogGroup %s: %w", p.group, err)
	}
	p.k.m.created("group")
	p.k.log.Info("created log group", "group", p.group, "retention_days", p.k.s.retentionDays)
	if p.k.s.retentionDays == 0 {
		return nil
	}
	_, err = p.k.client.PutRetentionPolicy(ctx, &cloudwatchlogs.PutRetentionPolicyInput{
		LogGroupName: aws.String(p.group), RetentionInDays: aws.Int32(p.k.s.retentionDays),
	})
	cls = classify(err)
	p.k.m.request(opRetention, cls.result())
	if err != nil {
		// The group exists and takes events; a missing retention policy is worth a warning, not
		// holding the records back.
		p.k.warn.Warn("retention:"+p.group, "could not set the retention of a log group the sink created",
			"group", p.group, "retention_days", p.k.s.retentionDays, "err", err)
	}
	return nil
}

func clamp(v, lo, hi int) int { return min(max(v, lo), hi) }
