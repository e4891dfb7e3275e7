from django.apps import AppConfig


class PagesConfig(AppConfig):
    name = "pages"

    def ready(self) -> None:
        # Runs inside django.setup(); the test suite injects failures here.
        pass
