package ui

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fungi-go/fungi/internal/atomicfile"
)

// LoginLifetime is how long a login link works; it is meant to be opened
// at once by the browser `fungi ui` starts.
const LoginLifetime = 2 * time.Minute

// maxSessions bounds the sessions kept in memory; the oldest goes first.
const maxSessions = 64

// sessionLifetime is how long a browser stays logged in.
const sessionLifetime = 12 * time.Hour

// LoadToken reads the node's UI token at path, creating it (32 random
// bytes, hex, mode 0600) when missing.
func LoadToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		tok := strings.TrimSpace(string(data))
		if len(tok) < 32 {
			return "", fmt.Errorf("the UI token in %s is too short; delete the file and restart the daemon to make a new one", path)
		}
		return tok, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(b)
	if err := atomicfile.Write(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", err
	}
	return tok, nil
}

// LoginLink is a one-time login URL for the dashboard at addr (host:port):
// LoginURL with a fresh LoginCode.
func LoginLink(token, addr string, now time.Time) string {
	return LoginURL(addr, LoginCode(token, now))
}

// LoginCode is a one-time login code minted from the node's token: an
// expiry, a random nonce and their MAC. The daemon accepts each nonce once
// and only before the expiry. It is a secret until redeemed: it goes in a
// URL printed to the user's terminal or in a private file, never on a
// command line other users can read.
func LoginCode(token string, now time.Time) string {
	nonce := make([]byte, 16)
	rand.Read(nonce)
	payload := strconv.FormatInt(now.Add(LoginLifetime).Unix(), 10) + "." + hex.EncodeToString(nonce)
	return payload + "." + mac(token, "login:"+payload)
}

// LoginURL is the GET form of a login code for the dashboard at addr.
func LoginURL(addr, code string) string {
	return "http://" + addr + "/login?code=" + code
}

// LoginPath is where the dashboard redeems login codes: GET with
// ?code=, or POST with a form field "code" (a login page's form, which
// keeps the code out of the browser's history).
const LoginPath = "/login"

func mac(token, msg string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// sessions holds the logged-in browsers and the login nonces already used.
type sessions struct {
	token string
	mu    sync.Mutex
	live  map[string]time.Time // session ID -> expiry
	used  map[string]time.Time // login nonce -> expiry of its link
}

func newSessions(token string) *sessions {
	return &sessions{token: token, live: map[string]time.Time{}, used: map[string]time.Time{}}
}

// redeem checks a login code and, the first time, returns a new session.
func (s *sessions) redeem(code string, now time.Time) (string, error) {
	parts := strings.Split(code, ".")
	if len(code) > 200 || len(parts) != 3 {
		return "", errors.New("malformed login code")
	}
	payload := parts[0] + "." + parts[1]
	if !hmac.Equal([]byte(parts[2]), []byte(mac(s.token, "login:"+payload))) {
		return "", errors.New("login code not minted with this node's token")
	}
	exp, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil || now.Unix() > exp {
		return "", errors.New("login link expired")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for n, e := range s.used {
		if now.Unix() > e.Unix() {
			delete(s.used, n)
		}
	}
	if _, ok := s.used[parts[1]]; ok {
		return "", errors.New("login link already used")
	}
	if len(s.used) >= 1024 {
		return "", errors.New("too many login links in flight; wait two minutes")
	}
	s.used[parts[1]] = time.Unix(exp, 0)
	id := make([]byte, 32)
	rand.Read(id)
	sid := hex.EncodeToString(id)
	if len(s.live) >= maxSessions {
		var oldest string
		var oldestExp time.Time
		for k, e := range s.live {
			if oldest == "" || e.Before(oldestExp) {
				oldest, oldestExp = k, e
			}
		}
		delete(s.live, oldest)
	}
	s.live[sid] = now.Add(sessionLifetime)
	return sid, nil
}

// valid reports whether sid is a live session.
func (s *sessions) valid(sid string, now time.Time) bool {
	if sid == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.live[sid]
	if ok && now.After(exp) {
		delete(s.live, sid)
		return false
	}
	return ok
}

// csrf is the CSRF token of a session: the page sends it back in a header
// on every state-changing request; another site cannot read it.
func (s *sessions) csrf(sid string) string { return mac(s.token, "csrf:"+sid) }

// bearerOK reports whether an Authorization header carries the token.
func (s *sessions) bearerOK(h string) bool {
	tok, ok := strings.CutPrefix(h, "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(tok), []byte(s.token)) == 1
}
