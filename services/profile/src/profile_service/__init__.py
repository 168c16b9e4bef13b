"""Profile service: people, their goals and skills; the source of truth other services follow."""
