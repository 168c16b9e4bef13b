from mentorship_kit.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "profile"
    http_port: int = 8001
