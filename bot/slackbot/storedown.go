package slackbot

import (
	"context"
	"errors"

	"github.com/redisbot/redisbot/bot/blockkit"
	"github.com/redisbot/redisbot/bot/store"
)

// While the state store does not answer, every command that needs it gets
// the same plain answer, whatever failed underneath: never silence, never
// the store's own error (it names the server's address), and never a
// wrong reason. A click on a pending approval in particular is told that
// its click was not recorded, not that the request is gone: the request
// still exists, and a click after the store is back approves it.
const (
	storeDownText         = "State store unavailable, try again in a moment."
	storeDownApprovalText = "State store unavailable, try again in a moment: your click was not recorded and the request is still pending."
)

// outcomeUnavailable is the outcome of a command answered with
// storeDownText.
const outcomeUnavailable = "store_unavailable"

// storeDown reports whether err is the state store failing (not an
// answer from it such as "not found").
func storeDown(err error) bool { return errors.Is(err, store.ErrUnavailable) }

// answerStoreDown answers j with text when err is the store failing, and
// reports whether it did; the error is logged, for operators.
func (b *Bot) answerStoreDown(ctx context.Context, j job, err error, text string) (bool, error) {
	if !storeDown(err) {
		return false, nil
	}
	b.log.WarnContext(ctx, "state store unavailable", "channel", j.channel, "user", j.user, "error", err)
	return true, b.ephemeral(ctx, j, blockkit.RenderRefusal(text))
}
