package commands

import "github.com/careflow/careflow/domain/care"

// ObserveCare lets a test see every session as the care handlers leave it.
func ObserveCare(c *Care, seen func(*care.Session)) { c.seen = seen }
