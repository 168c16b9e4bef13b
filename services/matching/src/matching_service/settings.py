from mentorship_kit.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "matching"
    http_port: int = 8002
