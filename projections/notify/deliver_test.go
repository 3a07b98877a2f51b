package notify

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mail is what the test SMTP server received.
type mail struct {
	from string
	to   []string
	data string
}

// smtpServer is a tiny SMTP server on 127.0.0.1 that accepts every mail.
type smtpServer struct {
	ln    net.Listener
	mu    sync.Mutex
	mails []mail
	done  chan struct{}
}

func startSMTPServer(t *testing.T) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &smtpServer{ln: ln, done: make(chan struct{})}
	go s.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		<-s.done
	})
	return s
}

func (s *smtpServer) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *smtpServer) received() []mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]mail(nil), s.mails...)
}

func (s *smtpServer) serve() {
	defer close(s.done)
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.session(conn)
	}
}

func (s *smtpServer) session(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(conn)
	reply := func(line string) { _, _ = conn.Write([]byte(line + "\r\n")) }
	reply("220 test.local ESMTP")
	var m mail
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		switch {
		case verb == "EHLO" || verb == "HELO":
			reply("250-test.local")
			reply("250 8BITMIME")
		case strings.HasPrefix(strings.ToUpper(line), "MAIL FROM:"):
			m.from = address(line[len("MAIL FROM:"):])
			reply("250 OK")
		case strings.HasPrefix(strings.ToUpper(line), "RCPT TO:"):
			m.to = append(m.to, address(line[len("RCPT TO:"):]))
			reply("250 OK")
		case verb == "DATA":
			reply("354 go ahead")
			var data strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				data.WriteString(l)
			}
			m.data = data.String()
			s.mu.Lock()
			s.mails = append(s.mails, m)
			s.mu.Unlock()
			m = mail{}
			reply("250 queued")
		case verb == "QUIT":
			reply("221 bye")
			return
		default:
			reply("250 OK")
		}
	}
}

// address takes the <path> of a MAIL or RCPT argument, leaving parameters.
func address(arg string) string {
	arg = strings.TrimSpace(arg)
	if end := strings.Index(arg, ">"); strings.HasPrefix(arg, "<") && end > 0 {
		return arg[1:end]
	}
	return arg
}

func TestSMTPDelivererMailsTheRecipientWithoutPHI(t *testing.T) {
	ctx := testContext(t)
	server := startSMTPServer(t)
	d, err := NewSMTPDeliverer(SMTPConfig{Host: "127.0.0.1", Port: server.port(), From: "careflow@clinic.example", LinkBase: "https://care.example/"},
		StaticAddressBook{"p1": "dr.one@clinic.example"})
	require.NoError(t, err)
	n := completion("p1", "event-1", t0, true)

	require.NoError(t, d.Deliver(ctx, n))

	mails := server.received()
	require.Len(t, mails, 1)
	got := mails[0]
	assert.Equal(t, "careflow@clinic.example", got.from)
	assert.Equal(t, []string{"dr.one@clinic.example"}, got.to)
	assert.Contains(t, got.data, "To: dr.one@clinic.example\r\n")
	assert.Contains(t, got.data, "Subject: careflow: URGENT notification\r\n")
	assert.Contains(t, got.data, "Notification: "+n.ID)
	assert.Contains(t, got.data, "https://care.example/notifications/"+n.ID)
	for _, secret := range []string{n.ClientID, n.SessionID, n.AssignmentID, n.BookID, "risk"} {
		assert.NotContains(t, got.data, secret, "mail leaves careflow: no client, session, assignment, book or flag")
	}
}

func TestSMTPDelivererSkipsRecipientsWithoutAddress(t *testing.T) {
	ctx := testContext(t)
	server := startSMTPServer(t)
	d, err := NewSMTPDeliverer(SMTPConfig{Host: "127.0.0.1", Port: server.port(), From: "careflow@clinic.example"}, StaticAddressBook{})
	require.NoError(t, err)
	require.NoError(t, d.Deliver(ctx, completion("p1", "event-1", t0, false)))
	assert.Empty(t, server.received())
}

func TestSMTPDelivererFailsWhenTheServerIsDown(t *testing.T) {
	ctx := testContext(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	d, err := NewSMTPDeliverer(SMTPConfig{Host: "127.0.0.1", Port: port, From: "careflow@clinic.example"},
		StaticAddressBook{"p1": "dr.one@clinic.example"})
	require.NoError(t, err)
	err = d.Deliver(ctx, completion("p1", "event-1", t0, false))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "127.0.0.1:"+strconv.Itoa(port))
}

func TestSMTPConfigIsChecked(t *testing.T) {
	_, err := NewSMTPDeliverer(SMTPConfig{Port: 70000, From: "not an address"}, nil)
	require.Error(t, err)
	for _, want := range []string{"host is empty", "port 70000", "not an address", "address book"} {
		assert.Contains(t, err.Error(), want)
	}
	_, err = NewSMTPDeliverer(SMTPConfig{Host: "h", Port: 25, From: "a@b\r\nBcc: x@y"}, StaticAddressBook{})
	assert.Error(t, err, "header injection through From is refused")
}

func TestLogDelivererLogsTheSummary(t *testing.T) {
	var buf bytes.Buffer
	d := LogDeliverer{Logger: slog.New(slog.NewTextHandler(&buf, nil))}
	n := completion("p1", "event-1", t0, true)
	require.NoError(t, d.Deliver(context.Background(), n))
	out := buf.String()
	assert.Contains(t, out, "level=WARN", "urgent notifications log as warnings")
	assert.Contains(t, out, "recipient=p1")
	assert.Contains(t, out, "urgent risk flag")
}
