from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from telephony.simulator import CallResult, Press, Say, SimulatorConfig, Step, call_record, place_calls, summarize


class _Steps(argparse.Action):
    """--say and --dtmf append to one list, in the order given on the command line."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> None:
        steps = list(getattr(namespace, self.dest, None) or [])
        steps.append(Say(values) if option_string == "--say" else Press(values))
        setattr(namespace, self.dest, steps)


class Command(BaseCommand):
    help = (
        "Place a phone call against a running server exactly as Twilio would (signed webhook, TwiML, "
        "media-stream WebSocket, 20 ms μ-law frames in real time), speak each --say line with espeak-ng, "
        "and print what the receptionist said and how fast. Exit status 1 if a call failed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server (webhooks are posted here)")
        parser.add_argument("--to", default="+15555550100", help="the number called (finds the shop)")
        parser.add_argument("--from", dest="from_", default="+15555550123", help="the caller's number")
        parser.add_argument("--say", dest="steps", action=_Steps, metavar="TEXT", help="a caller line (repeatable)")
        parser.add_argument(
            "--dtmf", dest="steps", action=_Steps, metavar="DIGITS", help="press keys, e.g. 0 for a person"
        )
        parser.add_argument("--barge-in", action="store_true", help="say the first line over the greeting")
        parser.add_argument("--hangup-after", type=float, metavar="SECONDS", help="hang up this far into the call")
        parser.add_argument(
            "--hold", action="store_true", help="after the last line, stay on the line until the server hangs up"
        )
        parser.add_argument(
            "--auth-token",
            default=None,
            help="Twilio auth token that signs the requests (default: TWILIO_AUTH_TOKEN; none = unsigned, "
            "which only a DEBUG server accepts)",
        )
        parser.add_argument(
            "--public-url",
            default=None,
            help="the server's public origin, which Twilio signs and the TwiML names (default: PUBLIC_BASE_URL); "
            "URLs in the TwiML are dialled at --url",
        )
        parser.add_argument("--webhook-url", default="", help="voice webhook URL (default: --url + the voice path)")
        parser.add_argument("--stream-url", default="", help="media-stream URL to dial instead of the TwiML's")
        parser.add_argument("--concurrency", type=int, default=1, help="calls at once (a load run)")
        parser.add_argument("--calls", type=int, default=None, help="calls in all (default: --concurrency)")
        parser.add_argument("--unpaced", action="store_true", help="send speech as fast as possible (tests)")
        parser.add_argument(
            "--transcript-from-db",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="print the call as the server recorded it (reads this project's database)",
        )
        parser.add_argument("--json", action="store_true", help="print the results as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        steps: list[Step] = options["steps"] or []
        if options["barge_in"] and steps and isinstance(steps[0], Say):
            steps[0] = Say(steps[0].text, over_greeting=True)
        if options["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1")
        token = options["auth_token"]
        config = SimulatorConfig(
            base_url=options["url"],
            to=options["to"],
            from_=options["from_"],
            auth_token=settings.TWILIO_AUTH_TOKEN if token is None else token,
            public_url=options["public_url"] or settings.PUBLIC_BASE_URL,
            webhook_url=options["webhook_url"],
            stream_url=options["stream_url"],
            paced=not options["unpaced"],
            hangup_after=options["hangup_after"],
            hold=options["hold"],
        )
        calls = options["calls"] or options["concurrency"]
        results = asyncio.run(place_calls(config, steps, calls=calls, concurrency=options["concurrency"]))
        if options["transcript_from_db"] and calls == 1:
            for result in results:
                result.record = call_record(result.call_sid)
        if calls == 1:
            self._report(results[0], steps, json_out=options["json"])
        else:
            summary = summarize(results)
            self.stdout.write(json.dumps(summary.as_dict()) if options["json"] else _summary_text(summary.as_dict()))
        if any(not r.ok for r in results):
            errors = sorted({e for r in results for e in r.errors})
            raise CommandError(f"a call failed: {'; '.join(errors[:5]) or 'see the report above'}", returncode=1)

    def _report(self, r: CallResult, steps: list[Step], *, json_out: bool) -> None:
        if json_out:
            self.stdout.write(json.dumps(r.as_dict(), default=str))
            return
        out = self.stdout.write
        out(f"Call {r.call_sid}: voice webhook answered {r.webhook_status} ({' '.join(r.twiml_verbs) or 'no TwiML'})")
        if not r.stream_url:
            for text in r.say:
                out(f"  Twilio says: {text}")
            if r.dial:
                out(f"  Twilio dials {r.dial}")
        elif r.stream_refused is not None:
            out(f"  media stream refused with HTTP {r.stream_refused}")
        else:
            out(f"  media stream {r.stream_url}")
            if r.greeting_ms is not None:
                out(f"  receptionist answered the call after {r.greeting_ms:.0f} ms")
            for exchange in r.exchanges:
                out(f"  caller: {exchange.said}")
                if exchange.first_audio_ms is None:
                    out("  receptionist: (no audio back)")
                else:
                    out(
                        f"  receptionist: {exchange.audio_ms / 1000:.1f} s of audio, starting "
                        f"{exchange.first_audio_ms:.0f} ms after the caller stopped"
                    )
            out(
                f"  stream closed by the {r.closed_by or 'network'} (code {r.close_code}) after {r.duration_s:.1f} s: "
                f"{r.media_frames} frames back, {r.marks_echoed}/{r.marks} marks echoed, {r.clears} clears, "
                f"{r.late_frames} late frames, longest wait in silence {r.dead_air_ms:.0f} ms"
            )
            if r.after_stream_verbs:
                dial = f" {r.after_stream_dial}" if r.after_stream_dial else ""
                out(f"  then Twilio: {' '.join(r.after_stream_verbs)}{dial}")
        for error in r.errors:
            out(f"  problem: {error}")
        record = r.record
        if record:
            out("What the receptionist recorded:")
            for turn in record["turns"]:
                who = "receptionist" if turn["role"] == "assistant" else turn["role"]
                out(f"  {who}: {turn['text']}")
            for tool in record["tool_calls"]:
                out(f"  tool {tool['name']}({json.dumps(tool['arguments'])}) → {'ok' if tool['ok'] else 'failed'}")
            first = record["first_response_ms"]
            out(
                f"  outcome {record['outcome'] or '(none)'} · engine {record['engine'] or '?'}"
                + (f" (fell back: {record['fallback_reason']})" if record["fallback_reason"] else "")
                + (f" · first response {first} ms" if first is not None else "")
            )


def _summary_text(summary: dict[str, Any]) -> str:
    return "\n".join(f"{key}: {value}" for key, value in summary.items())
