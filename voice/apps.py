from django.apps import AppConfig


class VoiceConfig(AppConfig):
    name = "voice"
    verbose_name = "Voice"

    def ready(self) -> None:
        from voice import checks  # noqa: F401 - registers the startup checks
