package slackbot_test

import (
	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/bot/outbox"
	"github.com/redisbot/redisbot/bot/slackbot"
)

// stormOptions is how BenchmarkReplyDuringAlertStorm wires the bot to
// Slack; scripts/bench-outbox.sh replaces this file to run the benchmark
// on a baseline commit whose bot called the API itself.
func stormOptions(api *slack.Client) slackbot.Options {
	return slackbot.Options{Outbox: outbox.New(outbox.Options{API: api})}
}
