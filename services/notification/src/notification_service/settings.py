from mentorship_kit.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "notification"
    http_port: int = 8004
